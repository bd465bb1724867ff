package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// env looks up an environment variable; tests pass their own.
type env func(string) string

// app is one invocation of the binary.
type app struct {
	stdout, stderr io.Writer
	getenv         env
	// signal holds the os.Signal that stopped the process, if any: it picks exit code 130 or
	// 143. It is written by the signal goroutine and read when the command ends.
	signal atomic.Value
	// vault holds the secrets read so far, for redaction (secrets.go).
	vault vault
}

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// Main runs the command line args and returns the exit code. SIGINT and SIGTERM cancel the
// context given to the command.
func Main(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			a.signal.Store(s)
			cancel(fmt.Errorf("received %v", s))
		case <-ctx.Done():
		}
	}()
	return a.main(ctx, args)
}

func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, helpText())
		return exitcode.Usage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return a.run(ctx, rest)
	case "schedule":
		return a.schedule(ctx, rest)
	case "migrate":
		err = a.migrate(ctx, rest)
	case "report":
		err = a.report(ctx, rest)
	case "audit":
		err = a.audit(ctx, rest)
	case "version", "--version":
		err = a.version(rest)
	case "help", "-h", "--help":
		fmt.Fprint(a.stdout, helpText())
		return exitcode.OK
	default:
		err = usagef("unknown command %q: want run, schedule, migrate, report, audit, version or help", cmd)
	}
	return a.exit(err)
}

// exit reports err once and maps it to an exit code.
func (a *app) exit(err error) int {
	if err == nil {
		return exitcode.OK
	}
	code := codeOf(err)
	if a.signal.Load() != nil && code == exitcode.Fatal {
		code = a.signalCode()
	}
	fmt.Fprintf(a.stderr, "retention: %s\n", a.redactor().Redact(err.Error()))
	if code == exitcode.Usage {
		var u *usageError
		if errors.As(err, &u) {
			fmt.Fprintln(a.stderr, "run 'retention help' for usage")
		}
	}
	return code
}

func (a *app) signalCode() int {
	if s, _ := a.signal.Load().(os.Signal); s == syscall.SIGINT {
		return exitcode.Interrupted
	}
	return exitcode.Terminated
}
