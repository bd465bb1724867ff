package main

import (
	"flag"
	"fmt"
	"time"
)

// option is one row of a command's flag table. The flag set, the environment reading, the
// help and the settings recorded on a run are all produced from these rows.
type option struct {
	name string
	// env lists the variables read, in order, when the flag is not given: nil means
	// RETENTION_<NAME> (upper case, - as _), noEnv none.
	env []string
	// value points at the variable the flag sets: *bool, *string, *int, *int64, *float64 or
	// *time.Duration, or is a flag.Value (a repeatable or checked flag) that holds its own
	// default. def is the default, of the same type (nil for a flag.Value): for the job's
	// settings, the job's own …Default constant.
	value any
	def   any
	help  string
	// nonZero refuses 0: for these settings the job reads 0 as "the default", which must not
	// happen silently to a value an operator typed.
	nonZero bool
	// setting is the key the value is recorded under in a run's settings; empty: not recorded.
	// record, when set, gives the recorded value instead of the flag's own.
	setting string
	record  func() any
	// aliases are the flag's former names, still read (flagSet.alias); choices, when set, the
	// only values it takes (flagSet.choose).
	aliases []string
	choices []string
}

// noEnv is the env of an option no variable sets.
var noEnv = []string{}

// define adds o to fs.
func (o option) define(fs *flagSet) {
	switch p := o.value.(type) {
	case *bool:
		fs.BoolVar(p, o.name, o.def.(bool), o.help)
	case *string:
		fs.StringVar(p, o.name, o.def.(string), o.help)
	case *int:
		fs.IntVar(p, o.name, o.def.(int), o.help)
	case *int64:
		fs.Int64Var(p, o.name, o.def.(int64), o.help)
	case *float64:
		fs.Float64Var(p, o.name, o.def.(float64), o.help)
	case *time.Duration:
		fs.DurationVar(p, o.name, o.def.(time.Duration), o.help)
	case flag.Value:
		fs.Var(p, o.name, o.help)
	default:
		panic(fmt.Sprintf("option --%s: unsupported type %T", o.name, o.value))
	}
	if o.env == nil || len(o.env) > 0 {
		fs.envName(o.name, o.env...)
	}
	for _, a := range o.aliases {
		fs.alias(a, o.name)
	}
	if len(o.choices) > 0 {
		fs.choose(o.name, o.choices...)
	}
}

// check refuses a value the option does not take.
func (o option) check() error {
	if o.nonZero && o.current() == o.zero() {
		return usagef("invalid --%s 0: want a positive value", o.name)
	}
	return nil
}

// current is the option's value now.
func (o option) current() any {
	switch p := o.value.(type) {
	case *bool:
		return *p
	case *string:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	case *float64:
		return *p
	case *time.Duration:
		return *p
	}
	return nil
}

func (o option) zero() any {
	switch o.value.(type) {
	case *int:
		return 0
	case *int64:
		return int64(0)
	case *float64:
		return 0.0
	case *time.Duration:
		return time.Duration(0)
	}
	return nil
}

// recorded is the value as a run's settings record it: durations as text such as "30s".
func (o option) recorded() any {
	v := o.current()
	if o.record != nil {
		v = o.record()
	}
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return v
}

// options is a command's flag table.
type options []option

// flagSet returns a flag set called name with every option of the table.
func (t options) flagSet(name string) *flagSet {
	fs := newFlagSet(name)
	t.define(fs)
	return fs
}

// define adds the table's options to fs.
func (t options) define(fs *flagSet) {
	for _, o := range t {
		o.define(fs)
	}
}

// check refuses the first value an option does not take.
func (t options) check() error {
	for _, o := range t {
		if err := o.check(); err != nil {
			return err
		}
	}
	return nil
}

// settings are the recorded options.
func (t options) settings() map[string]any {
	m := map[string]any{}
	for _, o := range t {
		if o.setting != "" {
			m[o.setting] = o.recorded()
		}
	}
	return m
}
