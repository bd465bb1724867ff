package main

import (
	"flag"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// TestHelpListsSharedOptionsAlike: every command that has a shared option lists it in its help
// exactly as the shared row renders it (name, default, variables, help), so the API settings,
// --output and --log-level read the same in verify, discover, migrate, run, schedule and sync.
func TestHelpListsSharedOptionsAlike(t *testing.T) {
	t.Parallel()
	var cfg job.Config
	var output, level string
	api, conc := apiOptions(&cfg), options{concurrencyOption(&cfg)}
	text := options{outputOption(&output), logLevelOption(&level)}
	textNoEnv := options{outputOption(&output).withEnv(noEnv), logLevelOption(&level)}
	for cmd, rows := range map[string]options{
		"verify":   slices.Concat(api, textNoEnv),
		"discover": slices.Concat(api, conc, textNoEnv),
		"migrate":  {logLevelOption(&level)},
		"run":      slices.Concat(api, conc, text),
		"schedule": slices.Concat(api, conc, text),
		"sync":     text,
	} {
		r := run(t, nil, cmd, "--help")
		require.Equal(t, exitcode.OK, r.code, "%s --help: %s", cmd, r)
		for _, o := range rows {
			var want strings.Builder
			options{o}.flagSet("shared").usage(&want)
			re := regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(o.name) + `\b.*\n.*\n`)
			entry := re.FindString(r.stdout)
			require.Equal(t, re.FindString(want.String()), entry, "%s --help, --%s", cmd, o.name)
			for _, a := range o.aliases {
				require.Contains(t, r.stdout, "  --"+a+"\n      the former name of --"+o.name+", still read\n", "%s --help, --%s", cmd, a)
			}
		}
	}
}

// TestVerifyDiscoverMigrateKeepTheirFlags: moving verify, discover and migrate onto the option
// table changed no flag's name, default or variable.
func TestVerifyDiscoverMigrateKeepTheirFlags(t *testing.T) {
	t.Parallel()
	api := map[string]string{
		"rate":            fmt.Sprint(job.RateDefault, " RETENTION_RATE"),
		"backoff-base":    job.BackoffBaseDefault.String() + " RETENTION_BACKOFF_BASE",
		"backoff-max":     job.BackoffMaxDefault.String() + " RETENTION_BACKOFF_MAX",
		"max-attempts":    fmt.Sprint(job.MaxAttemptsDefault, " RETENTION_MAX_ATTEMPTS"),
		"request-timeout": job.RequestTimeoutDefault.String() + " RETENTION_REQUEST_TIMEOUT",
	}
	plus := func(m map[string]string, kv ...string) map[string]string {
		out := maps.Clone(m)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	var v verifyOptions
	var d discoverOptions
	var level string
	for _, tt := range []struct {
		name string
		fs   *flagSet
		want map[string]string // flag -> "default variables"
	}{
		{"verify", verifyFlags(&v), plus(api,
			"character", "", "since", "", "sample", "0", "format", "text", "output", "text", "log-level", "",
			"pushgateway-url", " RETENTION_PUSHGATEWAY_URL", "allow-insecure-url", "false RETENTION_ALLOW_INSECURE_URL")},
		{"discover", discoverFlags(&d), plus(api,
			"character", "", "dry-run", "false", "source", "retention.sessions RETENTION_SOURCE", "format", "text", "output", "text",
			"log-level", "", "concurrency", fmt.Sprint(job.ConcurrencyDefault, " RETENTION_CONCURRENCY"), "allow-insecure-url", "false RETENTION_ALLOW_INSECURE_URL")},
		{"migrate", migrateOptions(&level).flagSet("migrate"), map[string]string{"log-level": ""}},
	} {
		got := map[string]string{}
		tt.fs.VisitAll(func(f *flag.Flag) {
			got[f.Name] = strings.TrimSpace(f.DefValue + " " + tt.fs.env[f.Name])
		})
		for k, w := range tt.want {
			tt.want[k] = strings.TrimSpace(w)
		}
		require.Equal(t, tt.want, got, tt.name)
	}
}

// A 0 that the job would read as "the default" is refused by verify and discover too, naming
// the flag, before they connect to anything.
func TestVerifyAndDiscoverRefuseZeroWhereItMeansTheDefault(t *testing.T) {
	t.Parallel()
	env := offline(t)
	for _, args := range [][]string{
		{"verify", "--max-attempts", "0"},
		{"verify", "--request-timeout=0s"},
		{"discover", "--concurrency", "0"},
		{"discover", "--backoff-base", "0"},
	} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
		flagName := strings.SplitN(strings.TrimPrefix(args[1], "--"), "=", 2)[0]
		require.Contains(t, r.stderr, "invalid --"+flagName+" 0: want a positive value", "%v", args)
		require.NotContains(t, r.stderr, "connect", "%v: stopped before the database", args)
	}
}
