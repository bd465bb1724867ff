package main

import "github.com/convai-retention/retention/job"

// The option rows several commands share, defined once: a command's table lists them, so the
// flag's name, default, variable and help are the same wherever it appears.
// TestHelpListsSharedOptionsAlike holds the commands' help to these rows.

// apiOptions are the settings of the calls to the Convai API and their retries: of run and
// schedule (deletions), verify (lists) and discover (lists and details). The defaults are the
// job's own.
func apiOptions(c *job.Config) options {
	return options{
		{name: "rate", value: &c.Rate, def: job.RateDefault, setting: "rate",
			help: "most API requests per second; 0 for unlimited (a run split into N shards sends at most rate/N from each)"},
		{name: "backoff-base", value: &c.BackoffBase, def: job.BackoffBaseDefault, nonZero: true, setting: "backoff_base",
			help: "first retry wait, doubled each try, with jitter"},
		{name: "backoff-max", value: &c.BackoffMax, def: job.BackoffMaxDefault, nonZero: true, setting: "backoff_max",
			help: "longest retry wait"},
		{name: "max-attempts", value: &c.MaxAttempts, def: job.MaxAttemptsDefault, nonZero: true, setting: "max_attempts",
			help: "most tries of one request"},
		{name: "request-timeout", value: &c.RequestTimeout, def: job.RequestTimeoutDefault, nonZero: true, setting: "request_timeout",
			help: "time limit of each try (a list is read whole within it)"},
	}
}

// concurrencyOption is --concurrency, the most API requests in flight: of run and schedule
// (deletions) and discover (details).
func concurrencyOption(c *job.Config) option {
	return option{name: "concurrency", value: &c.Concurrency, def: job.ConcurrencyDefault, nonZero: true, setting: "concurrency",
		help: "most requests in flight (1-256)"}
}

// outputOption is --format, the format of a command's summary on stdout: text or json, the
// same flag on every command (report's takes table, csv, json or html). --output, its former
// name, and RETENTION_OUTPUT still work; verify and discover, which never read the
// environment for it, take the row withEnv(noEnv).
func outputOption(v *string) option {
	return option{name: "format", aliases: []string{"output"}, env: []string{"RETENTION_FORMAT", "RETENTION_OUTPUT"},
		value: v, def: "text", choices: textFormats, help: "summary format on stdout: text or json"}
}

// textFormats are the values of a summary's --format.
var textFormats = []string{"text", "json"}

// logLevelOption is --log-level. LOG_LEVEL is read by logLevel, not by the flag set.
func logLevelOption(v *string) option {
	return option{name: "log-level", env: noEnv, value: v, def: "",
		help: "debug, info, warn or error [$LOG_LEVEL] (default info)"}
}

// withEnv is o read from the variables vars instead (noEnv: none).
func (o option) withEnv(vars []string) option {
	o.env = vars
	return o
}
