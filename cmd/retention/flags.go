package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// flagSet is a flag.FlagSet whose flags can also be set from the environment: each flag named
// with envName (every option of a table, unless its env is noEnv) reads that variable when the
// flag is not on the command line. A flag wins over
// the environment, the environment over the default.
type flagSet struct {
	*flag.FlagSet
	env map[string]string // flag name -> environment variable
	// aliases maps a flag's former name to its name: both set the same value.
	aliases map[string]string
	// choices lists the values a flag takes, when it takes only some.
	choices map[string][]string
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, env: map[string]string{}, aliases: map[string]string{}, choices: map[string][]string{}}
}

// alias lets the flag name also be set as --old, its former name, which still works.
func (f *flagSet) alias(old, name string) {
	fl := f.Lookup(name)
	f.Var(fl.Value, old, "the former name of --"+name+", still read")
	f.aliases[old] = name
}

// choose refuses, as a usage error naming the flag, a value of flag name other than these.
func (f *flagSet) choose(name string, values ...string) {
	f.choices[name] = values
}

// envName lets flag name be set from the variable RETENTION_<NAME> (upper case, - as _), or
// from the variables given instead.
func (f *flagSet) envName(name string, vars ...string) {
	if len(vars) == 0 {
		vars = []string{"RETENTION_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	f.env[name] = strings.Join(vars, ",")
}

// parse parses args, then fills unset flags from the environment, then refuses a value a flag
// does not take (choose): every command's check of its choices is this one. Errors are usage
// errors naming the flag or variable and the value.
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
	f.Visit(func(fl *flag.Flag) {
		set[fl.Name] = true
		if name, ok := f.aliases[fl.Name]; ok {
			set[name] = true // given by its former name: the environment does not override it
		}
	})
	from := map[string]string{} // flag name -> the variable that set it
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
			from[name] = v
			break
		}
	}
	for name, values := range f.choices {
		v := f.Lookup(name).Value.String()
		switch {
		case slices.Contains(values, v):
		case from[name] != "":
			return usagef("invalid %s=%q (for --%s): want %s", from[name], v, name, orList(values))
		default:
			return usagef("invalid --%s %q: want %s", name, v, orList(values))
		}
	}
	return nil
}

// orList writes values for people: "a", "a or b", "a, b or c".
func orList(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// parseOptions returns a command's options O, parsed from args and the environment by the flag
// set that flags makes of them.
func parseOptions[O any](args []string, getenv env, flags func(*O) *flagSet) (*O, error) {
	o := new(O)
	if err := flags(o).parse(args, getenv); err != nil {
		return nil, err
	}
	return o, nil
}

// usageOf writes, for a command's help, the flags of the flag set that flags makes of its
// options O.
func usageOf[O any](w io.Writer, flags func(*O) *flagSet) { flags(new(O)).usage(w) }

// usage writes the flags of f with their environment variables.
func (f *flagSet) usage(w io.Writer) {
	f.VisitAll(func(fl *flag.Flag) {
		if name, ok := f.aliases[fl.Name]; ok {
			fmt.Fprintf(w, "  --%s\n      the former name of --%s, still read\n", fl.Name, name)
			return
		}
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
