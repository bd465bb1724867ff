package main

import (
	"context"
	"flag"
	"strings"
)

// subcommand is one subcommand of a command that has several (audit, policy): its name and
// what it runs with the arguments after that name.
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string) error
}

// dispatch runs the subcommand of command that args[0] names. With no subcommand, the usage
// error quotes usage; -h, --help and help return flag.ErrHelp, and the Program prints the
// command's help: every subcommand's flags and the exit codes.
func dispatch(ctx context.Context, command, usage string, subs []subcommand, args []string) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 {
		return usagef("%s: want a subcommand: %s (%s)", command, orList(names), strings.TrimSuffix(usage, "\n"))
	}
	switch args[0] {
	case "-h", "--help", "help":
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:])
		}
	}
	return usagef("%s: unknown subcommand %q: want %s", command, args[0], orList(names))
}
