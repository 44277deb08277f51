// Command localtypes declares types inside functions, so that the compiler numbers them
// (DWARF `main.upper·2`, symbols `main.(*upper.2).Write`). The numbering differs between
// compilers (see scripts/sourcesigs/localtypes.go): Go <= 1.17 counts the alias and not the
// blank type, 1.18-1.19 number the package-level literal's type before every function body,
// 1.20+ go in source order and count the blank type. The promoted methods of each local type
// are kept by the calls through io.Writer.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func first(w io.Writer) io.Writer {
	type alias = strings.Builder
	type upper struct{ io.Writer }
	var b alias
	b.WriteString("first")
	fmt.Fprintln(w, b.String())
	return &upper{w}
}

func second(w io.Writer) (io.Writer, io.Writer) {
	type _ struct{}
	type upper struct {
		io.Writer
		n int
	}
	prefix := func(u upper, s string) (upper, int) {
		n, _ := fmt.Fprintf(u, "%d %s\n", u.n, s)
		return upper{u.Writer, u.n + n}, n
	}
	u, _ := prefix(upper{w, 1}, "second")
	return u, &u
}

// Functions the compiler names itself, whose signatures the source still gives: the init
// function main.init.0 and its literal main.init.0.func1, the method value's wrapper
// main.(*greeter).greet-fm, and (Go 1.22+) the go and defer statements' wrappers
// main.main.gowrap1 and main.main.deferwrap2 (one counter for both).
func init() {
	length = func(s string) int { return len(s) + 1 }
}

var length func(string) int

type greeter struct{ name string }

// Go 1.19 writes neither the parameters of greet-fm nor its results' names in DWARF.
//
//go:noinline
func (g *greeter) greet(w io.Writer, times int) (written int, err error) {
	return fmt.Fprintln(w, g.name, times)
}

// An interface's method value: its wrapper io.Writer.Write-fm, whose parameters Go 1.19's
// DWARF lacks, has no method DWARF to take them from (the interface's method is no function).
//
//go:noinline
func writer(w io.Writer) func([]byte) (int, error) {
	return w.Write
}

//go:noinline
func report(done chan<- int, greet func(io.Writer, int) (int, error)) {
	n, _ := greet(os.Stdout, length("report"))
	done <- n
}

func main() {
	w := first(os.Stdout)
	a, b := second(os.Stdout)
	for _, out := range []io.Writer{w, a, b, describe(os.Stdout)} {
		fmt.Fprintf(out, "%T\n", out)
	}
	done := make(chan int)
	go report(done, (&greeter{"hello"}).greet)
	defer fmt.Println("printed", <-done)
	fmt.Println(pair.f("pair"), pair.g(2))
	writer(os.Stdout)([]byte("method value\n"))
}

var describe = func(w io.Writer) io.Writer {
	type counted struct{ io.Writer }
	return counted{w}
}

// Package-level literals, named pkg.glob..funcN before Go 1.20 and pkg.init.funcN after. Go
// <= 1.17 numbers them as it type-checks the variables: pair's value refers to suffix, which
// has no declared type, so suffix's literal is checked (and numbered) before pair's own; 1.18
// and 1.19 go in declaration order; 1.20+ in initialisation order (suffix before pair again).
var pair = struct {
	f func(string) string
	g func(int) int
}{suffix, func(a int) int { return a * 2 }}

var suffix = func(s string) string { return s + "!" }
