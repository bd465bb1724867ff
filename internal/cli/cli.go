// Package cli is the one shape of the binaries' commands. A Command has a name, its help and a
// Run(ctx, args) error; a Program picks the command from the command line, prints the help a
// command was asked for (Run returned flag.ErrHelp), reports an error once and maps it to an
// exit code, the same way for every command of every binary.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The exit codes every binary shares. A binary adds its own through Program.Code and ExitError.
const (
	ExitOK      = 0
	ExitFailure = 1 // the default for an error nobody mapped
	ExitUsage   = 2
)

// UsageError is bad operator input (a flag, an argument, a variable): exit ExitUsage. Usagef
// returns one.
type UsageError struct {
	Err error
	// Shown is set when the message was already printed (the flag package prints its own
	// errors with the usage), so the Program does not print it again.
	Shown bool
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with the formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError ends a command with Code. Err, if set, is reported like any error; without it the
// command has already said what happened (a run that finished with failures: exit 1) and
// nothing more is printed. Exit returns one.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit returns an *ExitError: the command ends with code, reporting err if it is not nil.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// Command is one subcommand of a Program, or the only command of a binary without subcommands.
type Command struct {
	// Name is the word that picks the command; Aliases pick it too.
	Name    string
	Aliases []string
	// Run parses args (the words after the command's name) and does the work. It returns
	// flag.ErrHelp when asked for help: the Program then prints Help and exits 0.
	Run func(ctx context.Context, args []string) error
	// Help writes the command's usage and flags. Nil when Run prints its own (the flag package
	// prints a flag set's Usage when it meets -h).
	Help func(w io.Writer)
}

// Program is a binary: its commands, where it writes, and how its errors map to exit codes.
type Program struct {
	// Name starts every error line: "NAME: message".
	Name           string
	Stdout, Stderr io.Writer
	Commands       []*Command
	// Help writes the program's help: on stdout for "help", "-h" and "--help" (exit 0), on stderr
	// when no command is given (exit 2).
	Help func(w io.Writer)
	// Code maps an error that is neither a *UsageError nor an *ExitError to an exit code.
	// Default: ExitFailure for every error.
	Code func(err error) int
	// Redact hides secrets in an error message before it is printed. Default: none.
	Redact func(msg string) string
	// UsageHint is printed after a usage error, e.g. "run 'retention help' for usage".
	UsageHint string
}

// Main runs the command named by args[0] with the rest of args and returns the exit code.
func (p *Program) Main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		if p.Help != nil {
			p.Help(p.Stderr)
		}
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		if len(rest) > 0 { // "help COMMAND": that command's help
			for _, c := range p.Commands {
				if (c.Name == rest[0] || slices.Contains(c.Aliases, rest[0])) && c.Help != nil {
					c.Help(p.Stdout)
					return ExitOK
				}
			}
			return p.Exit(nil, Usagef("help: unknown command %q", rest[0]))
		}
		if p.Help != nil {
			p.Help(p.Stdout)
		}
		return ExitOK
	}
	for _, c := range p.Commands {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return p.Run(ctx, c, rest)
		}
	}
	names := make([]string, 0, len(p.Commands)+1)
	for _, c := range p.Commands {
		names = append(names, c.Name)
	}
	names = append(names, "help")
	return p.Exit(nil, Usagef("unknown command %q: want %s or %s", name,
		strings.Join(names[:len(names)-1], ", "), names[len(names)-1]))
}

// Run runs one command with args and returns the exit code.
func (p *Program) Run(ctx context.Context, c *Command, args []string) int {
	return p.Exit(c, c.Run(ctx, args))
}

// Exit reports err once and maps it to the exit code: nil is ExitOK; flag.ErrHelp prints c's
// help and is ExitOK; an *ExitError is its Code; a *UsageError is ExitUsage; anything else is
// what Code says.
func (p *Program) Exit(c *Command, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		if c != nil && c.Help != nil {
			c.Help(p.Stdout)
		}
		return ExitOK
	}
	var exit *ExitError
	if errors.As(err, &exit) && exit.Err == nil {
		return exit.Code
	}
	var usage *UsageError
	isUsage := errors.As(err, &usage)
	code := ExitFailure
	switch {
	case exit != nil:
		code = exit.Code
	case isUsage:
		code = ExitUsage
	case p.Code != nil:
		code = p.Code(err)
	}
	if isUsage && usage.Shown {
		return code
	}
	msg := err.Error()
	if p.Redact != nil {
		msg = p.Redact(msg)
	}
	fmt.Fprintf(p.Stderr, "%s: %s\n", p.Name, msg)
	if isUsage && p.UsageHint != "" {
		fmt.Fprintln(p.Stderr, p.UsageHint)
	}
	return code
}
