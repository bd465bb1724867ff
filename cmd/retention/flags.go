package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a flag.FlagSet whose flags can also be set from the environment: each flag named
// with envName (every option of a table, unless its env is noEnv) reads that variable when the
// flag is not on the command line. A flag wins over
// the environment, the environment over the default.
type flagSet struct {
	*flag.FlagSet
	env map[string]string // flag name -> environment variable
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, env: map[string]string{}}
}

// envName lets flag name be set from the variable RETENTION_<NAME> (upper case, - as _), or
// from the variables given instead.
func (f *flagSet) envName(name string, vars ...string) {
	if len(vars) == 0 {
		vars = []string{"RETENTION_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	f.env[name] = strings.Join(vars, ",")
}

// parse parses args, then fills unset flags from the environment. Errors are usage errors
// naming the flag or variable and the value.
func (f *flagSet) parse(args []string, getenv env) error {
	strictNumbers(f.FlagSet)
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %s", f.Name(), f.explain(err))
	}
	if f.NArg() > 0 {
		return usagef("%s: unexpected argument %q (flags come as --name=value)", f.Name(), f.Arg(0))
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, vars := range f.env {
		if set[name] {
			continue
		}
		for _, v := range strings.Split(vars, ",") {
			val := getenv(v)
			if val == "" {
				continue
			}
			if err := f.Set(name, val); err != nil {
				return usagef("invalid %s=%q (for --%s): %v", v, val, name, err)
			}
			break
		}
	}
	return nil
}

// usage writes the flags of f with their environment variables.
func (f *flagSet) usage(w io.Writer) {
	f.VisitAll(func(fl *flag.Flag) {
		env := ""
		if vars, ok := f.env[fl.Name]; ok {
			env = " [$" + strings.ReplaceAll(vars, ",", ", $") + "]"
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		fmt.Fprintf(w, "  --%s%s%s\n      %s\n", fl.Name, def, env, fl.Usage)
	})
}
