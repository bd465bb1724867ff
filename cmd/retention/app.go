package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
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
type usageError = cli.UsageError

func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

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

// program is the binary's commands, each of the one shape cli.Command: help and exit codes are
// handled by cli.Program, once.
func (a *app) program() *cli.Program {
	return &cli.Program{
		Name:   "retention",
		Stdout: a.stdout,
		Stderr: a.stderr,
		Commands: []*cli.Command{
			{Name: "run", Run: a.run, Help: withFooter(runHelp)},
			{Name: "schedule", Run: a.schedule, Help: withFooter(scheduleHelp)},
			{Name: "migrate", Run: a.migrate, Help: withFooter(migrateHelp)},
			{Name: "sync", Run: a.sync, Help: withFooter(syncHelp)},
			{Name: "report", Run: a.report, Help: withFooter(reportHelp)},
			{Name: "policy", Run: a.policy, Help: withFooter(policyHelp)},
			{Name: "plan", Run: a.plan, Help: withFooter(planHelp)},
			{Name: "audit", Run: a.audit, Help: withFooter(auditHelp)},
			{Name: "verify", Run: a.verify, Help: withFooter(verifyHelp)},
			{Name: "discover", Run: a.discover, Help: withFooter(discoverHelp)},
			{Name: "erase", Run: a.erase, Help: withFooter(eraseHelp)},
			{Name: "version", Aliases: []string{"--version"}, Run: a.version, Help: withFooter(versionHelp)},
		},
		Help:      func(w io.Writer) { fmt.Fprint(w, helpText()) },
		Code:      a.code,
		Redact:    func(msg string) string { return a.redactor().Redact(msg) },
		UsageHint: "run 'retention help' for usage",
	}
}

func (a *app) main(ctx context.Context, args []string) int {
	p := a.program()
	for _, c := range p.Commands {
		c.Run = explained(args, a.loginRole, c.Run)
	}
	return p.Main(ctx, args)
}

// code maps an error to its exit code; a fatal error after a signal exits as the signal says.
func (a *app) code(err error) int {
	code := codeOf(err)
	if a.signal.Load() != nil && code == exitcode.Fatal {
		code = a.signalCode()
	}
	return code
}

func (a *app) signalCode() int {
	if s, _ := a.signal.Load().(os.Signal); s == syscall.SIGINT {
		return exitcode.Interrupted
	}
	return exitcode.Terminated
}
