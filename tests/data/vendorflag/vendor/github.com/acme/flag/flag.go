// Package flag stands in for a third-party flag package with the standard
// library's package name (like github.com/spf13/pflag).
package flag

// FlagSet has a Parse method, as the standard library's FlagSet has.
type FlagSet struct {
	name string
	args []string
}

// NewFlagSet returns an empty FlagSet.
func NewFlagSet(name string) *FlagSet { return &FlagSet{name: name} }

// Parse keeps the arguments.
//
//go:noinline
func (f *FlagSet) Parse(arguments []string) error {
	f.args = append(f.args[:0], arguments...)
	return nil
}

// Args returns the arguments Parse kept.
//
//go:noinline
func (f *FlagSet) Args() []string { return f.args }
