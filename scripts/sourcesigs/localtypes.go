package main

// Types declared inside a function. The compiler makes their names unique in the
// package by a number: DWARF and type names spell such a type `T·N`, symbols `T.N`
// (`mime/multipart.(*writerOnly.1).Write`). N is one package-wide counter, but what
// it counts, and in which order, depends on the compiler's front end (read from
// each toolchain's cmd/compile/internal):
//
//   - Go <= 1.17 (gc/dcl.go, declare): every local type declaration but a blank
//     one, aliases included (`declare_typegen++` for any OTYPE not at package
//     level), in the order the noder meets them: files in order, each in source
//     order, function literals where they stand.
//   - Go 1.18-1.19 (noder/decl.go, typeDecl: types.(*Type).SetVargen): defined
//     types only (an alias takes no number; a blank one does), declared while a
//     function is built. Function bodies and package-level variables are built
//     later (irgen.later), but both in declaration order: source order again.
//   - Go 1.20+ (unified IR, noder/writer.go, declCollector): defined types only,
//     blank ones included, any type declaration inside a block, in source order
//     over the files in order (syntax.Walk).
//
// tests/data/localtypes tells the rules apart (its symbols, built by Go 1.15, 1.19, 1.27).
import (
	"go/ast"
	"go/types"
	"os/exec"
	"regexp"
	"strconv"
)

// localTypeNumber: the number of each local defined type of the program.
var localTypeNumber = map[*types.TypeName]int{}

// compilerMinor is the minor version of the Go that built the binary (its front
// end decides the numbering); 0 in fixture mode (no numbering).
var compilerMinor int

var goVersionRE = regexp.MustCompile(`go1\.(\d+)`)

// toolchainMinor runs `GO version` and returns its minor version.
func toolchainMinor(goCmd string) (int, error) {
	out, err := exec.Command(goCmd, "version").Output()
	if err != nil {
		return 0, err
	}
	m := goVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, nil
	}
	return strconv.Atoi(string(m[1]))
}

// numberLocalTypes numbers one package's local types as compilerMinor's compiler does.
func numberLocalTypes(info *types.Info, files []*ast.File) {
	n := 0
	count := func(spec *ast.TypeSpec) {
		alias := spec.Assign.IsValid()
		if compilerMinor <= 17 {
			if spec.Name.Name == "_" {
				return
			}
		} else if alias {
			return
		}
		n++
		if tn, ok := info.Defs[spec.Name].(*types.TypeName); ok && !alias {
			localTypeNumber[tn] = n
		}
	}
	for _, f := range files {
		walkLocalTypes(f, false, count)
	}
}

// walkLocalTypes calls count for each type declaration inside a block, in source order.
func walkLocalTypes(node ast.Node, inBlock bool, count func(*ast.TypeSpec)) {
	ast.Inspect(node, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BlockStmt:
			if !inBlock {
				walkLocalTypes(n, true, count)
				return false
			}
		case *ast.TypeSpec:
			if inBlock {
				count(n)
			}
		}
		return true
	})
}

// localTypeName: the name of a type with its local number, `T·N` (sep "·") or
// `T.N` (sep ".", as symbols spell it); the plain name for a package-level type.
func localTypeName(tn *types.TypeName, sep string) string {
	if n, ok := localTypeNumber[tn]; ok {
		return tn.Name() + sep + strconv.Itoa(n)
	}
	return tn.Name()
}
