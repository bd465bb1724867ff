package cli_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/cli"
)

type bundle struct {
	p              *cli.Program
	stdout, stderr *bytes.Buffer
	ran            []string
}

// setup is a program with a command "do" that returns what its first argument names.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	do := func(_ context.Context, args []string) error {
		b.ran = append(b.ran, strings.Join(args, " "))
		fs := flag.NewFlagSet("do", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &cli.UsageError{Err: err}
		}
		switch fs.Arg(0) {
		case "fail":
			return errors.New("it broke; secret s3cr3t")
		case "wrapped-usage":
			return fmt.Errorf("do: %w", cli.Usagef("bad --x"))
		case "exit3":
			return cli.Exit(3, nil)
		case "exit4":
			return cli.Exit(4, errors.New("key rejected"))
		case "mapped":
			return errMapped
		case "shown":
			return &cli.UsageError{Err: errors.New("printed already"), Shown: true}
		}
		return nil
	}
	b.p = &cli.Program{
		Name: "prog", Stdout: b.stdout, Stderr: b.stderr,
		Commands: []*cli.Command{
			{Name: "do", Aliases: []string{"--do"}, Run: do, Help: func(w io.Writer) { fmt.Fprint(w, "usage: prog do\n") }},
			{Name: "other", Run: func(context.Context, []string) error { return nil }},
		},
		Help: func(w io.Writer) { fmt.Fprint(w, "prog help\n") },
		Code: func(err error) int {
			if errors.Is(err, errMapped) {
				return 7
			}
			return 5
		},
		Redact:    func(s string) string { return strings.ReplaceAll(s, "s3cr3t", "[redacted]") },
		UsageHint: "run 'prog help' for usage",
	}
	return b
}

var errMapped = errors.New("mapped")

func (b *bundle) main(args ...string) int { return b.p.Main(context.Background(), args) }

func TestMainPicksTheCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, 0, b.main("do", "a", "b"))
	require.Equal(t, 0, b.main("--do"))
	require.Equal(t, []string{"a b", ""}, b.ran)
	require.Empty(t, b.stderr.String())
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"help", "-h", "--help"} {
		b := setup(t)
		require.Equal(t, 0, b.main(arg))
		require.Equal(t, "prog help\n", b.stdout.String())
	}

	b := setup(t)
	require.Equal(t, 2, b.main(), "no command")
	require.Equal(t, "prog help\n", b.stderr.String())
	require.Empty(t, b.stdout.String())

	b = setup(t)
	require.Equal(t, 0, b.main("do", "-h"), "a command's help")
	require.Equal(t, "usage: prog do\n", b.stdout.String())
	require.Empty(t, b.stderr.String())

	b = setup(t)
	require.Equal(t, 0, b.main("help", "do"), "help COMMAND is that command's help")
	require.Equal(t, "usage: prog do\n", b.stdout.String())
	require.Empty(t, b.stderr.String())

	b = setup(t)
	require.Equal(t, 2, b.main("help", "nope"))
	require.Contains(t, b.stderr.String(), `help: unknown command "nope"`)
}

func TestErrorsAndExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"nope"}, 2, "prog: unknown command \"nope\": want do, other or help\nrun 'prog help' for usage\n"},
		{[]string{"do", "--bad"}, 2, "prog: flag provided but not defined: -bad\nrun 'prog help' for usage\n"},
		{[]string{"do", "wrapped-usage"}, 2, "prog: do: bad --x\nrun 'prog help' for usage\n"},
		{[]string{"do", "fail"}, 5, "prog: it broke; secret [redacted]\n"},
		{[]string{"do", "mapped"}, 7, "prog: mapped\n"},
		{[]string{"do", "exit3"}, 3, ""},
		{[]string{"do", "exit4"}, 4, "prog: key rejected\n"},
		{[]string{"do", "shown"}, 2, ""},
	}
	for _, tt := range tests {
		b := setup(t)
		require.Equal(t, tt.code, b.main(tt.args...), "%q", tt.args)
		require.Equal(t, tt.stderr, b.stderr.String(), "%q", tt.args)
		require.Empty(t, b.stdout.String(), "%q", tt.args)
	}
}

// A Program without Code or Redact: every error that is not a usage error is 1, as printed.
func TestDefaults(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	p := &cli.Program{Name: "one", Stderr: &stderr}
	require.Equal(t, 0, p.Exit(nil, nil))
	require.Equal(t, 0, p.Exit(nil, flag.ErrHelp))
	require.Equal(t, 1, p.Exit(nil, errors.New("boom")))
	require.Equal(t, 2, p.Exit(nil, cli.Usagef("bad %s", "flag")))
	require.Equal(t, "one: boom\none: bad flag\n", stderr.String())
}
