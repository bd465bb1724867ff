package main

import (
	"errors"
	"flag"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/internal/secret"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/source"
)

// codeOf maps an error to the exit code that tells an operator (or Kubernetes) what happened.
func codeOf(err error) int {
	var (
		usage    *usageError
		refusal  *dbRefusalError
		cfg      *job.ConfigError
		apiCfg   *convai.ConfigError
		srcErr   *source.SourceError
		relErr   *source.InvalidRelationError
		outdated *migrations.OutdatedError
		format   *report.FormatError
		cp       *audit.CheckpointError
		aborted  *job.AbortError
	)
	switch {
	case err == nil:
		return exitcode.OK
	case errors.As(err, &usage), errors.As(err, &refusal), errors.As(err, &cfg), errors.As(err, &apiCfg), errors.As(err, &srcErr),
		errors.As(err, &relErr), errors.As(err, &outdated), errors.Is(err, migrations.ErrSchemaMissing),
		errors.Is(err, flag.ErrHelp), errors.As(err, &format), errors.As(err, &cp):
		return exitcode.Usage
	case errors.Is(err, audit.ErrChainBroken):
		return exitcode.Partial // 1: audit verify found records edited, removed or inserted
	case errors.As(err, &aborted):
		return exitcode.Aborted
	case errors.Is(err, job.ErrLocked):
		return exitcode.Locked
	case errors.Is(err, job.ErrKeyRejected):
		return exitcode.KeyRejected
	}
	return exitcode.Fatal
}

// redact replaces every secret in s, whole, in every form secret.Redactor finds. Secrets
// shorter than secret.MinLen are ignored: replacing them would garble the message without
// hiding anything.
func redact(s string, secrets ...string) string {
	return secret.New(nil, secrets).Redact(s)
}
