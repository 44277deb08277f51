package main

import (
	"go/types"
	"sort"
	"strconv"
	"strings"
)

// typeStr prints a type in signatures. Fixture mode keeps types.TypeString;
// program mode sets dwarfTypeString.
var typeStr = func(t types.Type) string { return types.TypeString(t, nil) }

// dwarfTypeString spells a type as Go's DWARF and runtime type names do, where
// go/types would print it differently: an alias is its target
// (runtime._type = internal/abi.Type), and a func type has no parameter names
// (func([]uint8, int) []uint8, not func(src []byte, indent int) []byte).
func dwarfTypeString(t types.Type) string {
	var b strings.Builder
	writeType(&b, t)
	return b.String()
}

func writeType(b *strings.Builder, t types.Type) {
	switch t := t.(type) {
	case *types.Alias:
		writeType(b, types.Unalias(t))
	case *types.Pointer:
		b.WriteString("*")
		writeType(b, t.Elem())
	case *types.Slice:
		b.WriteString("[]")
		writeType(b, t.Elem())
	case *types.Array:
		b.WriteString("[" + strconv.FormatInt(t.Len(), 10) + "]")
		writeType(b, t.Elem())
	case *types.Map:
		b.WriteString("map[")
		writeType(b, t.Key())
		b.WriteString("]")
		writeType(b, t.Elem())
	case *types.Chan:
		switch t.Dir() {
		case types.SendRecv:
			b.WriteString("chan ")
		case types.SendOnly:
			b.WriteString("chan<- ")
		case types.RecvOnly:
			b.WriteString("<-chan ")
		}
		writeType(b, t.Elem())
	case *types.Signature:
		b.WriteString("func")
		writeSignature(b, t)
	case *types.Named:
		if obj := t.Obj(); obj.Pkg() != nil {
			b.WriteString(obj.Pkg().Path() + ".")
		}
		b.WriteString(localTypeName(t.Obj(), "·"))
		if args := t.TypeArgs(); args != nil && args.Len() > 0 {
			b.WriteString("[")
			for i := 0; i < args.Len(); i++ {
				if i > 0 {
					b.WriteString(",")
				}
				writeType(b, args.At(i))
			}
			b.WriteString("]")
		}
	case *types.Struct:
		b.WriteString("struct {")
		for i := 0; i < t.NumFields(); i++ {
			if i > 0 {
				b.WriteString(";")
			}
			f := t.Field(i)
			b.WriteString(" ")
			if !f.Embedded() {
				b.WriteString(f.Name() + " ")
			}
			writeType(b, f.Type())
		}
		if t.NumFields() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("}")
	case *types.Interface:
		if t.NumMethods() == 0 || t.IsImplicit() || !t.IsMethodSet() {
			b.WriteString(types.TypeString(t, nil))
			return
		}
		// every method, embedded interfaces' too, unexported ones qualified, sorted
		var methods []string
		for i := 0; i < t.NumMethods(); i++ {
			m := t.Method(i)
			var mb strings.Builder
			if !m.Exported() && m.Pkg() != nil {
				mb.WriteString(m.Pkg().Path() + ".")
			}
			mb.WriteString(m.Name())
			writeSignature(&mb, m.Type().(*types.Signature))
			methods = append(methods, mb.String())
		}
		sort.Strings(methods)
		b.WriteString("interface { " + strings.Join(methods, "; ") + " }")
	default:
		b.WriteString(types.TypeString(t, nil))
	}
}

func writeSignature(b *strings.Builder, s *types.Signature) {
	b.WriteString("(")
	for i := 0; i < s.Params().Len(); i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		t := s.Params().At(i).Type()
		if s.Variadic() && i == s.Params().Len()-1 {
			b.WriteString("...")
			t = t.(*types.Slice).Elem()
		}
		writeType(b, t)
	}
	b.WriteString(")")
	switch n := s.Results().Len(); {
	case n == 1:
		b.WriteString(" ")
		writeType(b, s.Results().At(0).Type())
	case n > 1:
		b.WriteString(" (")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			writeType(b, s.Results().At(i).Type())
		}
		b.WriteString(")")
	}
}
