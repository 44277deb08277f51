// Command vendorflag uses the standard library's flag package and a vendored
// package also named flag, as the docker CLI does with spf13/pflag. Built in
// GOPATH mode (GO111MODULE=off, from $GOPATH/src/example.com/vendorflag), where
// the vendored package's symbols are
// example.com/vendorflag/vendor/github.com/acme/flag.(*FlagSet).Parse; see
// tests/test_names.py.
package main

import (
	"flag"
	"fmt"
	"os"

	aflag "github.com/acme/flag"
)

func main() {
	std := flag.NewFlagSet("std", flag.ContinueOnError)
	verbose := std.Bool("v", false, "verbose")
	if err := std.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	fs := aflag.NewFlagSet("acme")
	if err := fs.Parse(std.Args()); err != nil {
		os.Exit(2)
	}
	fmt.Println(*verbose, fs.Args())
}
