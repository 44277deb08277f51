// Command sourcesigs prints the expected signatures of every function and method
// of a Go package directory (a dwarfgo fixture), derived from the SOURCE with
// go/parser and go/types only (standard library, no dependency on dwarfgo's
// Python code). Run it with the newest Go toolchain (the last line of
// $DWARFGO_TOOLCHAINS/go-versions), offline, from this directory:
//
//	cd scripts/sourcesigs && /opt/dwarfgo/toolchains/bin/go1.27 run . ../../fixtures/shapes
//
// or with any Go >= 1.18: `GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod go run . DIR`.
// Types come from the "source" importer (go/importer), which type-checks imported
// standard packages from $GOROOT/src: no export data, no network. It prints one
// JSON object on stdout. Each key is the ELF symbol name Go gives the function
// (`main.Add`, `main.(*Store).Put`, `main.Pair.String`); for generic functions
// and methods of generic types the key is the ELF name with the type-argument
// list removed (`main.Map` for `main.Map[go.shape.int,go.shape.string]`,
// `main.(*Stack).Push` for `main.(*Stack[go.shape.int]).Push`). Each value:
//
//	{"params":   [{"name": "a", "type": "int8"}, ...],   // "" for an unnamed parameter, "_" for a blank one
//	 "results":  [{"name": "", "type": "error"}, ...],   // "" for an unnamed result
//	 "receiver": {"name": "p", "type": "*main.Pair"} or null,
//	 "variadic": bool,                                     // the last param's type is then "[]T"
//	 "go118":    bool,    // defined in a file built only with go1.18 or later (//go:build go1.18)
//	 "noinline": bool,    // has a //go:noinline directive: a probed function of the fixture
//	 "inlinable": bool,   // has a //dwarfgo:inlinable line: a probed function the compiler also
//	                      // inlines (its out-of-line copy is described by an abstract origin)
//	 "generic":  bool,    // "type_params": [{"name": "T", "constraint": "any"}, ...] when true
//	 "closure":  bool,    // a function literal (see below)
//	 "file": "funcs.go", "line": 12}
//
// Types are printed by types.TypeString qualified by the package path (`main.Pair`,
// `*main.Node`, `[]int`, `map[string]int`, `func(int) string`, `interface {}`, `error`,
// `context.Context`, `[3]int`, `struct{}`). go/types keeps the spelling of the
// predeclared aliases: `byte`, `rune` and (Go 1.23+) `any` appear as written, where
// DWARF says `uint8`, `int32` and `interface {}`; the Python test normalizes those.
//
// Function literals directly inside a non-generic top-level function F are listed
// as `main.F.func1`, `main.F.func2`, ... in source order with "closure": true, the
// names the compiler gives them when they are compiled as separate functions. A
// literal that is called directly or that is inlined may have no symbol, and one
// inlined into another function gets another name, so treat closures as optional.
// Nested literals and literals in generic functions are not listed.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

type param struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type typeParam struct {
	Name       string `json:"name"`
	Constraint string `json:"constraint"`
}

type sig struct {
	Params     []param     `json:"params"`
	Results    []param     `json:"results"`
	Receiver   *param      `json:"receiver"`
	Variadic   bool        `json:"variadic"`
	Go118      bool        `json:"go118"`
	Noinline   bool        `json:"noinline"`
	Inlinable  bool        `json:"inlinable"`
	Generic    bool        `json:"generic"`
	TypeParams []typeParam `json:"type_params,omitempty"`
	Closure    bool        `json:"closure"`
	NoBody     bool        `json:"nobody,omitempty"`
	RangeFunc  bool        `json:"return_in_range_func,omitempty"`
	Wrapper    string      `json:"wrapper,omitempty"`
	GoDefer    bool        `json:"godefer,omitempty"`
	Package    string      `json:"package,omitempty"`
	File       string      `json:"file"`
	Line       int         `json:"line"`
}

type entry struct {
	key string
	sig sig
}

func main() {
	var out []byte
	var err error
	switch {
	case len(os.Args) == 2:
		out, err = run(os.Args[1])
	case len(os.Args) == 5 && os.Args[1] == "-program" && os.Args[2] == "-go":
		typeStr = dwarfTypeString
		out, err = runProgram(os.Args[3], os.Args[4])
	default:
		fmt.Fprintln(os.Stderr, "usage: sourcesigs DIR | sourcesigs -program -go GO DIR")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sourcesigs:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func run(dir string) ([]byte, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var files []*ast.File
	go118 := map[*ast.File]bool{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		ok, needs118, err := buildConstraint(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if !ok {
			continue
		}
		files = append(files, f)
		go118[f] = needs118
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	info := &types.Info{Defs: map[*ast.Ident]types.Object{}, Types: map[ast.Expr]types.TypeAndValue{}}
	pkg, err := conf.Check(files[0].Name.Name, fset, files, info)
	if err != nil {
		return nil, err
	}
	var entries []entry
	for _, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			fn := info.Defs[fd.Name].(*types.Func)
			s := fn.Type().(*types.Signature)
			pos := fset.Position(fd.Pos())
			e := sig{
				Params:    tuple(s.Params()),
				Results:   tuple(s.Results()),
				Variadic:  s.Variadic(),
				Go118:     go118[f],
				Noinline:  hasDirective(fd.Doc, "//go:noinline"),
				Inlinable: hasDirective(fd.Doc, "//dwarfgo:inlinable"),
				File:      filepath.Base(pos.Filename),
				Line:      pos.Line,
			}
			key := pkg.Path() + "." + fd.Name.Name
			if fd.Name.Name == "init" {
				key = "" // main.init.0, main.init.1, ...: not listed
			}
			if tps := s.TypeParams(); tps != nil && tps.Len() > 0 {
				e.Generic = true
				e.TypeParams = typeParams(tps)
			}
			if r := s.Recv(); r != nil {
				e.Receiver = &param{Name: r.Name(), Type: types.TypeString(r.Type(), nil)}
				if len(fd.Recv.List) > 0 && len(fd.Recv.List[0].Names) == 0 {
					e.Receiver.Name = ""
				}
				if tps := s.RecvTypeParams(); tps != nil && tps.Len() > 0 {
					e.Generic = true
					e.TypeParams = typeParams(tps)
				}
				key = methodKey(pkg.Path(), r.Type(), fd.Name.Name)
			}
			if key != "" {
				entries = append(entries, entry{key, e})
			}
			if !e.Generic && key != "" && fd.Body != nil {
				entries = append(entries, closures(fset, info, key, fd.Body, go118[f])...)
			}
		}
	}
	var buf bytes.Buffer
	buf.WriteString("{\n")
	seen := map[string]bool{}
	for i, e := range entries {
		if seen[e.key] {
			return nil, fmt.Errorf("duplicate key %s", e.key)
		}
		seen[e.key] = true
		v, err := json.Marshal(e.sig)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&buf, "  %s: %s", strconv.Quote(e.key), v)
		if i < len(entries)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString("}\n")
	// Check that the output is valid JSON.
	var check map[string]interface{}
	if err := json.Unmarshal(buf.Bytes(), &check); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildConstraint evaluates the file's //go:build line for linux/amd64 with the
// newest release tags; needs118 reports whether it requires go1.18 or later.
func buildConstraint(f *ast.File) (ok bool, needs118 bool, err error) {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false, false, err
			}
			ok := expr.Eval(func(tag string) bool {
				switch tag {
				case "linux", "amd64", "gc", "unix":
					return true
				}
				return strings.HasPrefix(tag, "go1.")
			})
			// Does the file drop out when go1.18+ tags are false?
			without := expr.Eval(func(tag string) bool {
				switch tag {
				case "linux", "amd64", "gc", "unix":
					return true
				}
				if strings.HasPrefix(tag, "go1.") {
					n, err := strconv.Atoi(tag[len("go1."):])
					return err == nil && n < 18
				}
				return false
			})
			return ok, ok && !without, nil
		}
	}
	return true, false, nil
}

func hasDirective(doc *ast.CommentGroup, directive string) bool {
	if doc == nil {
		return false
	}
	for _, c := range doc.List {
		if strings.TrimSpace(c.Text) == directive {
			return true
		}
	}
	return false
}

// tuple lists a parameter or result tuple; names come from go/types, and a
// name that is absent in the source is "".
func tuple(t *types.Tuple) []param {
	ps := []param{}
	for i := 0; i < t.Len(); i++ {
		v := t.At(i)
		ps = append(ps, param{Name: v.Name(), Type: typeStr(v.Type())})
	}
	return ps
}

func typeParams(tps *types.TypeParamList) []typeParam {
	var r []typeParam
	for i := 0; i < tps.Len(); i++ {
		tp := tps.At(i)
		r = append(r, typeParam{Name: tp.Obj().Name(), Constraint: types.TypeString(tp.Constraint(), nil)})
	}
	return r
}

// methodKey: main.T.M for a value receiver, main.(*T).M for a pointer receiver,
// without type arguments for a generic receiver type.
func methodKey(pkgPath string, recv types.Type, name string) string {
	ptr := false
	if p, ok := recv.(*types.Pointer); ok {
		ptr = true
		recv = p.Elem()
	}
	tname := recv.String()
	if n, ok := recv.(*types.Named); ok {
		tname = localTypeName(n.Obj(), ".")
	}
	if ptr {
		return pkgPath + ".(*" + tname + ")." + name
	}
	return pkgPath + "." + tname + "." + name
}

// closures lists the function literals directly inside body (not nested in
// another literal), named outer.func1, outer.func2, ... in source order.
func closures(fset *token.FileSet, info *types.Info, outer string, body *ast.BlockStmt, go118 bool) []entry {
	var r []entry
	n := 0
	ast.Inspect(body, func(node ast.Node) bool {
		lit, ok := node.(*ast.FuncLit)
		if !ok {
			return true
		}
		n++
		s, ok := info.Types[lit].Type.(*types.Signature)
		if ok {
			pos := fset.Position(lit.Pos())
			r = append(r, entry{fmt.Sprintf("%s.func%d", outer, n), sig{
				Params:   tuple(s.Params()),
				Results:  tuple(s.Results()),
				Variadic: s.Variadic(),
				Go118:    go118,
				Closure:  true,
				File:     filepath.Base(pos.Filename),
				Line:     pos.Line,
			}})
		}
		return false // nested literals are not listed
	})
	return r
}
