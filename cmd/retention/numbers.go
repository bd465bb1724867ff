package main

import (
	"errors"
	"flag"
	"regexp"
)

// Numbers in the documented form: decimal digits with an optional sign, and for rates an
// optional fraction. Go's flag package would also take 0x10, 0o20, 0b10000, 1_000, 1e3, NaN
// and Inf, from a flag as from the environment; an operator who writes those means something
// else, or made a typo.
var (
	decimalInt   = regexp.MustCompile(`^[+-]?[0-9]+$`)
	decimalFloat = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$`)
)

// strictNumber is a numeric flag.Value that refuses anything but the documented form.
type strictNumber struct {
	flag.Value
	form *regexp.Regexp
	want string
}

func (v strictNumber) Set(s string) error {
	if !v.form.MatchString(s) {
		return errors.New(v.want)
	}
	return v.Value.Set(s)
}

// Get returns the wrapped value, so the flag stays a flag.Getter.
func (v strictNumber) Get() any {
	if g, ok := v.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

// strictNumbers makes every integer and float flag of fs take only decimal numbers, whether
// set on the command line or from the environment.
func strictNumbers(fs *flag.FlagSet) {
	fs.VisitAll(func(fl *flag.Flag) {
		g, ok := fl.Value.(flag.Getter)
		if !ok {
			return
		}
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			fl.Value = strictNumber{Value: fl.Value, form: decimalInt, want: "want a whole number in decimal digits"}
		case float64:
			fl.Value = strictNumber{Value: fl.Value, form: decimalFloat, want: "want a decimal number such as 10 or 2.5"}
		}
	})
}
