package main

// Package-level function literals before Go 1.20: pkg.glob..func1, pkg.glob..func2,
// ... (one package-wide counter, globClosgen), numbered when the front end names
// them (closurename / ir.closureName with no enclosing function), read from each
// toolchain's cmd/compile/internal:
//
//   - Go <= 1.17 (gc/main.go phase 2, gc/closure.go typecheckclosure): as the
//     package-level variable assignments are type-checked, in declaration order
//     (files in order). Type-checking a reference to a package-level variable
//     declared without a type first type-checks that variable's declaration
//     (gc/typecheck.go typecheckdef), so its literals come first. Bodies of
//     literals are checked later: references in them do not count.
//   - Go 1.18-1.19 (noder/decl.go varDecl, irgen.later; noder/expr.go funcLit):
//     package-level variable declarations in declaration order, files in order.
//
// Within one value the literals are named in source order; nested ones are
// pkg.glob..funcN.M as in any literal.

import (
	"go/ast"
	"go/token"
	"go/types"
	"strconv"
	"strings"
)

// globAssignment is one package-level assignment the compiler type-checks as a
// whole: one variable and its value, or all the variables of `var a, b = f()`.
type globAssignment struct {
	values  []ast.Expr
	untyped bool // declared without a type: a reference type-checks it first (Go <= 1.17)
	done    bool
}

func globLiterals(fset *token.FileSet, info *types.Info, pkg *types.Package, files []*ast.File, importPath string) []entry {
	var order []*globAssignment
	byVar := map[*types.Var]*globAssignment{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if len(vs.Values) == 0 {
					continue
				}
				if len(vs.Values) == 1 && len(vs.Names) > 1 { // OAS2
					a := &globAssignment{values: vs.Values, untyped: vs.Type == nil}
					order = append(order, a)
					for _, name := range vs.Names {
						if v, ok := info.Defs[name].(*types.Var); ok {
							byVar[v] = a
						}
					}
					continue
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					a := &globAssignment{values: vs.Values[i : i+1], untyped: vs.Type == nil}
					order = append(order, a)
					if v, ok := info.Defs[name].(*types.Var); ok {
						byVar[v] = a
					}
				}
			}
		}
	}
	var r []entry
	n := 0
	var visit func(a *globAssignment)
	visit = func(a *globAssignment) {
		if a.done {
			return
		}
		a.done = true
		for _, value := range a.values {
			ast.Inspect(value, func(node ast.Node) bool {
				switch x := node.(type) {
				case *ast.FuncLit:
					n++
					lit := &ast.BlockStmt{List: []ast.Stmt{&ast.ExprStmt{X: x}}}
					named, _ := nestedClosures(fset, info, pkg.Path()+".glob.", lit, false, importPath)
					r = append(r, renumberGlob(named, pkg.Path()+".glob.", n)...)
					return false
				case *ast.Ident:
					if compilerMinor <= 17 {
						if v, ok := info.Uses[x].(*types.Var); ok && v.Pkg() == pkg && v.Parent() == pkg.Scope() {
							if dep := byVar[v]; dep != nil && dep.untyped {
								visit(dep)
							}
						}
					}
				}
				return true
			})
		}
	}
	for _, a := range order {
		visit(a)
	}
	return r
}

// renumberGlob renames the entries nestedClosures made for one literal (outer.func1
// and its nested outer.func1.M) to the literal's place in the package: outer.funcN.
func renumberGlob(named []entry, outer string, n int) []entry {
	from := outer + ".func1"
	to := outer + ".func" + strconv.Itoa(n)
	for i := range named {
		if named[i].key == from || strings.HasPrefix(named[i].key, from+".") {
			named[i].key = to + named[i].key[len(from):]
		}
	}
	return named
}
