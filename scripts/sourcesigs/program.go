package main

// Program mode: `sourcesigs -program -go GO DIR` prints the expected signature of
// every function of a whole program: the main package in DIR (a GOROOT command
// such as $GOROOT/src/cmd/gofmt, or a module's main package) and every package it
// imports, with the file lists `GO list -deps -json` gives for linux/amd64 with
// cgo off (GO is the toolchain that built the binary: its GOROOT is the source).
// Each package is parsed and type-checked with go/types, in dependency order, an
// importer handing out the packages already checked. Keys are ELF symbol names as
// in fixture mode (the main package is `main`; other packages by import path,
// vendored ones as the go command names them); in addition:
//
//   - functions without a body (implemented in assembly) are listed with
//     "nobody": true;
//   - function literals are listed everywhere (methods and generic functions too),
//     nested ones as F.func1.1, with "closure": true; literals in package-level
//     variables as the compiler numbers them (pkg.glob..funcN before Go 1.20,
//     pkg.init.funcN after: packageLiterals);
//   - "package" is the import path, "nonmain" whether the package is not main.
//
// Type-checking errors are reported on stderr and do not stop the output; a
// package that does not type-check at all is skipped.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	ImportMap  map[string]string
	Standard   bool
	Goroot     bool
}

type programImporter struct {
	checked   map[string]*types.Package
	importMap map[string]string
}

func (im *programImporter) Import(path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	if p, ok := im.importMap[path]; ok {
		path = p
	}
	if pkg, ok := im.checked[path]; ok {
		return pkg, nil
	}
	return nil, fmt.Errorf("package %s not checked yet", path)
}

func runProgram(goCmd, dir string) ([]byte, error) {
	minor, err := toolchainMinor(goCmd)
	if err != nil {
		return nil, fmt.Errorf("%s version: %v", goCmd, err)
	}
	compilerMinor = minor
	cmd := exec.Command(goCmd, "list", "-deps", "-json", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s list: %v: %s", goCmd, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	fset := token.NewFileSet()
	checked := map[string]*types.Package{}
	var entries []entry
	for _, lp := range pkgs { // -deps lists dependencies first
		if lp.ImportPath == "unsafe" || lp.ImportPath == "C" {
			continue
		}
		var files []*ast.File
		for _, name := range lp.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(lp.Dir, name), nil, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		path := lp.ImportPath
		if lp.Name == "main" {
			path = "main"
		}
		nerrs := 0
		conf := types.Config{
			Importer: &programImporter{checked, lp.ImportMap},
			Error: func(err error) {
				if nerrs < 3 {
					fmt.Fprintf(os.Stderr, "sourcesigs: %s: %v\n", lp.ImportPath, err)
				}
				nerrs++
			},
			FakeImportC: true,
		}
		info := &types.Info{Defs: map[*ast.Ident]types.Object{}, Uses: map[*ast.Ident]types.Object{}, Types: map[ast.Expr]types.TypeAndValue{},
			Selections: map[*ast.SelectorExpr]*types.Selection{}}
		pkg, _ := conf.Check(path, fset, files, info)
		if pkg == nil {
			continue
		}
		checked[lp.ImportPath] = pkg
		numberLocalTypes(info, files)
		inits := 0
		entries = append(entries, entry{pkg.Path() + ".init", sig{Params: []param{}, Results: []param{}, Package: lp.ImportPath}})
		for _, f := range files {
			entries = append(entries, fileEntries(fset, info, pkg, f, lp.ImportPath, &inits)...)
		}
		entries = append(entries, wrapperEntries(pkg, typeNames(pkg, info), lp.ImportPath)...)
		entries = append(entries, packageLiterals(fset, info, pkg, files, lp.ImportPath)...)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	var buf bytes.Buffer
	buf.WriteString("{\n")
	seen := map[string]bool{}
	first := true
	for _, e := range entries {
		if seen[e.key] {
			continue // e.g. a method declared in two files excluded from each other's builds
		}
		seen[e.key] = true
		v, err := json.Marshal(e.sig)
		if err != nil {
			return nil, err
		}
		if !first {
			buf.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&buf, "  %s: %s", strconv.Quote(e.key), v)
	}
	buf.WriteString("\n}\n")
	return buf.Bytes(), nil
}

// fileEntries lists one file's functions, methods and (nested) function literals.
//
// A package's init functions are pkg.init.0, pkg.init.1, ... in the order of the
// files and of their declarations (*inits counts them over the files); the
// compiler's package initialiser pkg.init takes no arguments either.
func fileEntries(fset *token.FileSet, info *types.Info, pkg *types.Package, f *ast.File, importPath string, inits *int) []entry {
	var r []entry
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		obj, ok := info.Defs[fd.Name].(*types.Func)
		if !ok {
			continue
		}
		s := obj.Type().(*types.Signature)
		pos := fset.Position(fd.Pos())
		e := sig{
			Params:   tuple(s.Params()),
			Results:  tuple(s.Results()),
			Variadic: s.Variadic(),
			Noinline: hasDirective(fd.Doc, "//go:noinline"),
			NoBody:   fd.Body == nil,
			Package:  importPath,
			File:     filepath.Base(pos.Filename),
			Line:     pos.Line,
		}
		key := pkg.Path() + "." + fd.Name.Name
		if fd.Name.Name == "_" {
			continue
		}
		if fd.Name.Name == "init" && fd.Recv == nil {
			key = pkg.Path() + ".init." + strconv.Itoa(*inits)
			*inits++
		}
		if tps := s.TypeParams(); tps != nil && tps.Len() > 0 {
			e.Generic = true
			e.TypeParams = typeParams(tps)
		}
		if rv := s.Recv(); rv != nil {
			e.Receiver = &param{Name: rv.Name(), Type: typeStr(rv.Type())}
			if len(fd.Recv.List) > 0 && len(fd.Recv.List[0].Names) == 0 {
				e.Receiver.Name = ""
			}
			if tps := s.RecvTypeParams(); tps != nil && tps.Len() > 0 {
				e.Generic = true
				e.TypeParams = typeParams(tps)
			}
			key = methodKey(pkg.Path(), rv.Type(), fd.Name.Name)
		}
		e.RangeFunc = fd.Body != nil && returnsInRangeFunc(info, fd.Body)
		rangeFuncReturn[obj] = e.RangeFunc
		r = append(r, entry{key, e})
		if fd.Body != nil {
			literals, n := nestedClosures(fset, info, key, fd.Body, e.Generic, importPath)
			r = append(r, literals...)
			r = append(r, goDeferWrappers(fset, info, key, fd.Body, e.Generic, n, importPath)...)
		}
	}
	return r
}

// nestedClosures lists the literals in body: outer.func1, outer.func2, ... in
// source order, and those inside outer.funcN as outer.funcN.1, outer.funcN.2, ...;
// and how many literals body holds itself (not nested in one of them).
func nestedClosures(fset *token.FileSet, info *types.Info, outer string, body ast.Node, generic bool, importPath string) ([]entry, int) {
	var r []entry
	n := 0
	var inspect func(node ast.Node) bool
	inspect = func(node ast.Node) bool {
		if ifs, ok := node.(*ast.IfStmt); ok {
			// the compiler drops the dead branch of a constant condition (`if debug {`) before it
			// numbers the literals: those in it get no number
			if tv, ok := info.Types[ifs.Cond]; ok && tv.Value != nil && tv.Value.Kind() == constant.Bool {
				if ifs.Init != nil {
					ast.Inspect(ifs.Init, inspect)
				}
				if constant.BoolVal(tv.Value) {
					ast.Inspect(ifs.Body, inspect)
				} else if ifs.Else != nil {
					ast.Inspect(ifs.Else, inspect)
				}
				return false
			}
		}
		lit, ok := node.(*ast.FuncLit)
		if !ok {
			return true
		}
		n++
		name := fmt.Sprintf("%s.func%d", outer, n)
		if isClosureName(outer) {
			name = fmt.Sprintf("%s.%d", outer, n)
		}
		if s, ok := info.Types[lit].Type.(*types.Signature); ok {
			pos := fset.Position(lit.Pos())
			r = append(r, entry{name, sig{
				Params:    tuple(s.Params()),
				Results:   tuple(s.Results()),
				Variadic:  s.Variadic(),
				Closure:   true,
				Generic:   generic,
				RangeFunc: returnsInRangeFunc(info, lit.Body),
				Package:   importPath,
				File:      filepath.Base(pos.Filename),
				Line:      pos.Line,
			}})
		}
		literals, inner := nestedClosures(fset, info, name, lit.Body, generic, importPath)
		r = append(r, literals...)
		r = append(r, goDeferWrappers(fset, info, name, lit.Body, generic, inner, importPath)...)
		return false
	}
	ast.Inspect(body, inspect)
	return r, n
}

// isClosureName: outer.funcN or outer.funcN.M (a literal's name); not an init
// function pkg.init.N, whose literals are pkg.init.N.funcM.
func isClosureName(name string) bool {
	i := strings.LastIndex(name, ".")
	last := name[i+1:]
	if _, err := strconv.Atoi(last); err == nil {
		return !strings.HasSuffix(name[:i], ".init")
	}
	return strings.HasPrefix(last, "func") && len(last) > 4 && strings.Trim(last[4:], "0123456789") == ""
}

// returnsInRangeFunc: body has a return statement inside the body of a
// range-over-func loop (not inside a nested function literal). The compiler
// rewrites such a function; Go 1.23-1.27 then write no DWARF entry for its
// unnamed results.
func returnsInRangeFunc(info *types.Info, body *ast.BlockStmt) bool {
	found := false
	var walk func(n ast.Node, inRange bool)
	walk = func(n ast.Node, inRange bool) {
		ast.Inspect(n, func(node ast.Node) bool {
			if found {
				return false
			}
			switch x := node.(type) {
			case *ast.FuncLit:
				return false
			case *ast.ReturnStmt:
				if inRange {
					found = true
				}
			case *ast.RangeStmt:
				if tv, ok := info.Types[x.X]; ok {
					if _, isFunc := tv.Type.Underlying().(*types.Signature); isFunc {
						walk(x.Body, true)
						return false
					}
				}
			}
			return true
		})
	}
	walk(body, false)
	return found
}

// typeNames: the package-level type names of pkg, then its local defined types
// (declared inside functions: pkg.T.N).
func typeNames(pkg *types.Package, info *types.Info) []*types.TypeName {
	var r []*types.TypeName
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		if tn, ok := scope.Lookup(name).(*types.TypeName); ok {
			r = append(r, tn)
		}
	}
	var local []*types.TypeName
	for _, obj := range info.Defs {
		if tn, ok := obj.(*types.TypeName); ok && localTypeNumber[tn] != 0 {
			local = append(local, tn)
		}
	}
	sort.Slice(local, func(i, j int) bool { return localTypeNumber[local[i]] < localTypeNumber[local[j]] })
	return append(r, local...)
}

// wrapperEntries lists the methods the compiler may generate wrappers for, with
// "wrapper" saying which: "promoted" for a method of an embedded field
// (pkg.T.M, pkg.(*T).M; a local type's methods are all promoted ones:
// pkg.T.N.M, pkg.(*T.N).M), "interface" for a method expression on an interface
// type (pkg.I.M, receiver I). (The pointer wrapper of a value method,
// pkg.(*T).M, is derived from pkg.T.M by the audit.) Generic types are left out.
func wrapperEntries(pkg *types.Package, names []*types.TypeName, importPath string) []entry {
	var r []entry
	for _, tn := range names {
		if tn.IsAlias() {
			continue
		}
		named, ok := tn.Type().(*types.Named)
		if !ok || named.TypeParams().Len() > 0 {
			continue
		}
		if iface, ok := named.Underlying().(*types.Interface); ok {
			for i := 0; i < iface.NumMethods(); i++ {
				m := iface.Method(i)
				r = append(r, wrapperEntry(pkg, named, m, "interface", importPath))
			}
			continue
		}
		for _, recv := range []types.Type{named, types.NewPointer(named)} {
			ms := types.NewMethodSet(recv)
			for i := 0; i < ms.Len(); i++ {
				sel := ms.At(i)
				if len(sel.Index()) < 2 {
					continue // declared on the type itself
				}
				r = append(r, wrapperEntry(pkg, recv, sel.Obj().(*types.Func), "promoted", importPath))
			}
		}
	}
	return r
}

// rangeFuncReturn: declared functions and methods that return inside a
// range-over-func loop body (their wrappers' results are omitted from DWARF too).
var rangeFuncReturn = map[*types.Func]bool{}

func wrapperEntry(pkg *types.Package, recv types.Type, m *types.Func, kind, importPath string) entry {
	s := m.Type().(*types.Signature)
	return entry{methodKey(pkg.Path(), recv, m.Name()), sig{
		RangeFunc: rangeFuncReturn[m.Origin()],
		Params:    tuple(s.Params()),
		Results:   tuple(s.Results()),
		Receiver:  &param{Name: "", Type: typeStr(recv)},
		Variadic:  s.Variadic(),
		Package:   importPath,
		Wrapper:   kind,
	}}
}

// goDeferWrappers lists the wrappers the compiler makes for the go and defer
// statements of one function body (not of the literals in it), in source order.
// It wraps every call but a plain function call without parameters and results,
// into a function of type func(): its values travel in the closure context. Dead
// branches of a constant condition are skipped, as for literals.
//
//   - Go 1.22+ (typecheck.normalizeGoDeferCall): outer.gowrapN and
//     outer.deferwrapN, one counter for both (ir.closureName's goDeferGen).
//   - Go 1.17-1.21 (escape/call.go goDeferStmt, read in 1.19 and 1.21; 1.17 did
//     it in walk/order.go, not checked here): a closure of outer, named after the literals, which the
//     front end has named before: outer.func(L+1), ... (outer.funcN.(L+1) in a
//     literal), L being the literals of the body (literals). Closures inlined
//     into outer are named between the two, with the same counter (1.21 names
//     them outer.G.funcN, G the inlined function; 1.17-1.20 outer.funcN), so a
//     wrapper may take a later number: the audit confirms each by its line, the
//     go or defer statement's (Line). Not for generic functions (their
//     instantiations are named apart).
func goDeferWrappers(fset *token.FileSet, info *types.Info, outer string, body ast.Node, generic bool, literals int, importPath string) []entry {
	if compilerMinor < 17 || compilerMinor < 22 && generic {
		return nil
	}
	var r []entry
	n := 0
	var inspect func(node ast.Node) bool
	inspect = func(node ast.Node) bool {
		var call *ast.CallExpr
		kind := ""
		switch x := node.(type) {
		case *ast.FuncLit:
			return false
		case *ast.IfStmt:
			if tv, ok := info.Types[x.Cond]; ok && tv.Value != nil && tv.Value.Kind() == constant.Bool {
				if x.Init != nil {
					ast.Inspect(x.Init, inspect)
				}
				if constant.BoolVal(tv.Value) {
					ast.Inspect(x.Body, inspect)
				} else if x.Else != nil {
					ast.Inspect(x.Else, inspect)
				}
				return false
			}
		case *ast.GoStmt:
			call, kind = x.Call, "gowrap"
		case *ast.DeferStmt:
			call, kind = x.Call, "deferwrap"
		}
		if call == nil {
			return true
		}
		if needsGoDeferWrapper(info, call) {
			n++
			name := fmt.Sprintf("%s.%s%d", outer, kind, n)
			if compilerMinor < 22 {
				name = fmt.Sprintf("%s.func%d", outer, literals+n)
				if isClosureName(outer) {
					name = fmt.Sprintf("%s.%d", outer, literals+n)
				}
			}
			pos := fset.Position(node.Pos())
			r = append(r, entry{name, sig{
				Params: []param{}, Results: []param{}, GoDefer: true, Package: importPath,
				File: filepath.Base(pos.Filename), Line: pos.Line}})
		}
		return true // the call's operands may hold literals, not other statements
	}
	ast.Inspect(body, inspect)
	return r
}

// needsGoDeferWrapper: the call is not a plain call (OCALLFUNC) of a function
// without parameters and results. Method calls, builtins and calls with arguments
// or results are wrapped.
func needsGoDeferWrapper(info *types.Info, call *ast.CallExpr) bool {
	fun := ast.Unparen(call.Fun)
	if sel, ok := fun.(*ast.SelectorExpr); ok {
		if s, ok := info.Selections[sel]; ok && s.Kind() != types.FieldVal {
			return true // a method (a field of function type is a plain call)
		}
	}
	tv, ok := info.Types[fun]
	if !ok || tv.IsBuiltin() || tv.IsType() {
		return true
	}
	s, ok := tv.Type.Underlying().(*types.Signature)
	if !ok {
		return true
	}
	return s.Params().Len()+s.Results().Len() != 0
}

// packageLiterals lists the function literals of package-level variables' initial
// values. Go 1.20+ (unified IR) builds them inside the package initialiser in the
// order of package initialisation (types2's Info.InitOrder, which go/types
// computes alike: noder/writer.go pkgInitOrder), each value's literals in source
// order: pkg.init.func1, pkg.init.func2, ... (nested ones pkg.init.func1.1).
// Older compilers call them pkg.glob..func1, ... in the order they name them
// (globLiteralOrder).
func packageLiterals(fset *token.FileSet, info *types.Info, pkg *types.Package, files []*ast.File, importPath string) []entry {
	if compilerMinor < 20 {
		return globLiterals(fset, info, pkg, files, importPath)
	}
	values := &ast.BlockStmt{}
	for _, init := range info.InitOrder {
		values.List = append(values.List, &ast.ExprStmt{X: init.Rhs})
	}
	literals, _ := nestedClosures(fset, info, pkg.Path()+".init", values, false, importPath)
	return literals
}

