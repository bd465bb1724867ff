package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// offline is an environment whose database cannot be reached: a test using it proves the
// program stopped before connecting, since connecting would fail with exit 5.
func offline(t *testing.T) map[string]string {
	return map[string]string{"DATABASE_URL": closedURL(t, "retention"), "CONVAI_API_KEY": testKey}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	env := offline(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of stdout
		stderr string // a part of stderr
	}{
		{"no arguments", nil, exitcode.Usage, "", "usage:"},
		{"unknown command", []string{"purge"}, exitcode.Usage, "", `unknown command "purge"`},
		{"version", []string{"version"}, exitcode.OK, "retention ", ""},
		{"--version", []string{"--version"}, exitcode.OK, "retention ", ""},
		{"version with an argument", []string{"version", "x"}, exitcode.Usage, "", "version takes no arguments"},
		{"run --help", []string{"run", "--help"}, exitcode.OK, "--chunk-size", ""},
		{"migrate --help", []string{"migrate", "--help"}, exitcode.OK, "usage: retention migrate", ""},
		{"run with a stray argument", []string{"run", "now"}, exitcode.Usage, "", `unexpected argument "now"`},
		{"unknown flag", []string{"run", "--chunks", "5"}, exitcode.Usage, "", "chunks"},
		{"chunk size not a number", []string{"run", "--chunk-size", "abc"}, exitcode.Usage, "", "chunk-size"},
		{"chunk size negative", []string{"run", "--chunk-size", "-1"}, exitcode.Usage, "", "invalid --chunk-size -1"},
		{"chunk size too big", []string{"run", "--chunk-size", "10001"}, exitcode.Usage, "", "invalid --chunk-size 10001"},
		{"concurrency too big", []string{"run", "--concurrency", "257"}, exitcode.Usage, "", "invalid --concurrency 257"},
		{"negative rate", []string{"run", "--rate", "-1"}, exitcode.Usage, "", "invalid --rate -1"},
		{"backoff max under base", []string{"run", "--backoff-base", "2s", "--backoff-max", "1s"}, exitcode.Usage, "", "invalid --backoff-max 1s"},
		{"negative budget", []string{"run", "--max-deletions", "-5"}, exitcode.Usage, "", "invalid --max-deletions -5"},
		{"shard index out of range", []string{"run", "--shard-count", "2", "--shard-index", "2"}, exitcode.Usage, "", "invalid --shard-index 2: want 0 to 1"},
		{"negative shard index", []string{"run", "--shard-index", "-1"}, exitcode.Usage, "", "invalid --shard-index -1"},
		{"output yaml", []string{"run", "--output", "yaml"}, exitcode.Usage, "", `invalid --format "yaml": want text or json`},
		{"format yaml", []string{"run", "--format", "yaml"}, exitcode.Usage, "", `invalid --format "yaml": want text or json`},
		{"log level", []string{"run", "--log-level", "loud"}, exitcode.Usage, "", `invalid log level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, env, tt.args...)
			require.Equal(t, tt.code, r.code, "%s", r)
			require.Contains(t, r.stdout, tt.stdout, "%s", r)
			require.Contains(t, r.stderr, tt.stderr, "%s", r)
			if tt.code == exitcode.Usage {
				require.NotContains(t, r.stderr, "connect to database", "stopped before the database: %s", r)
			}
		})
	}
}

func TestEnvironmentErrors(t *testing.T) {
	t.Parallel()
	env := offline(t)
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		stderr []string
	}{
		{"chunk size from env not a number", with(env, "RETENTION_CHUNK_SIZE", "abc"), []string{"run"},
			[]string{`RETENTION_CHUNK_SIZE="abc"`, "--chunk-size"}},
		{"duration from env", with(env, "RETENTION_REQUEST_TIMEOUT", "soon"), []string{"run"},
			[]string{`RETENTION_REQUEST_TIMEOUT="soon"`}},
		{"output from env", with(env, "RETENTION_OUTPUT", "yaml"), []string{"run"},
			[]string{`invalid RETENTION_OUTPUT="yaml" (for --format): want text or json`}},
		{"format from env", with(env, "RETENTION_FORMAT", "yaml"), []string{"run"},
			[]string{`invalid RETENTION_FORMAT="yaml" (for --format): want text or json`}},
		{"log level from env", with(env, "LOG_LEVEL", "chatty"), []string{"run"},
			[]string{`invalid log level "chatty"`}},
		{"shard index from JOB_COMPLETION_INDEX out of range", with(env, "JOB_COMPLETION_INDEX", "3", "RETENTION_SHARD_COUNT", "3"), []string{"run"},
			[]string{"invalid --shard-index 3: want 0 to 2"}},
		{"JOB_COMPLETION_INDEX not a number", with(env, "JOB_COMPLETION_INDEX", "x"), []string{"run"},
			[]string{`JOB_COMPLETION_INDEX="x"`}},
		{"no DATABASE_URL", with(env, "DATABASE_URL", ""), []string{"run"},
			[]string{"DATABASE_URL is not set"}},
		{"blank DATABASE_URL", with(env, "DATABASE_URL", "  "), []string{"run", "--dry-run"},
			[]string{"DATABASE_URL is not set"}},
		{"no DATABASE_URL for migrate", with(env, "DATABASE_URL", ""), []string{"migrate"},
			[]string{"DATABASE_URL is not set"}},
		{"no API key for a real run", with(env, "CONVAI_API_KEY", ""), []string{"run"},
			[]string{"no API key"}},
		{"blank API key", with(env, "CONVAI_API_KEY", " \n"), []string{"run"},
			[]string{"no API key"}},
		{"both key and key file", with(env, "CONVAI_API_KEY_FILE", "/nonexistent/key"), []string{"run"},
			[]string{"both CONVAI_API_KEY and CONVAI_API_KEY_FILE"}},
		{"unreadable key file", with(env, "CONVAI_API_KEY", "", "CONVAI_API_KEY_FILE", "/nonexistent/key"), []string{"run"},
			[]string{"CONVAI_API_KEY_FILE: /nonexistent/key: cannot open"}},
		{"key with a space", with(env, "CONVAI_API_KEY", "two words"), []string{"run"},
			[]string{"APIKey"}},
		{"API URL not http", with(env, "CONVAI_API_URL", "ftp://api.example"), []string{"run"},
			[]string{"BaseURL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.env, tt.args...)
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			for _, s := range tt.stderr {
				require.Contains(t, r.stderr, s, "%s", r)
			}
			require.NotContains(t, r.stderr, "connect to database", "stopped before the database: %s", r)
		})
	}
}

func TestEmptyKeyFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600))
	r := run(t, with(offline(t), "CONVAI_API_KEY", "", "CONVAI_API_KEY_FILE", file), "run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "is empty")
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "help")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, r.stderr)
	help := r.stdout

	for _, code := range []int{exitcode.OK, exitcode.Partial, exitcode.Usage, exitcode.Locked,
		exitcode.KeyRejected, exitcode.Fatal, exitcode.Aborted, exitcode.Interrupted, exitcode.Terminated} {
		require.Regexp(t, regexp.MustCompile(fmt.Sprintf(`(?m)^\s+%d\s+\S`, code)), help, "exit code %d", code)
	}
	for _, v := range []string{"DATABASE_URL", "CONVAI_API_KEY", "CONVAI_API_KEY_FILE", "CONVAI_API_URL", "LOG_LEVEL"} {
		require.Contains(t, help, v)
	}
	for _, cmd := range []string{"retention migrate", "retention run", "retention version", "retention help"} {
		require.Contains(t, help, cmd)
	}

	// Every run flag, with the variables that set it in its entry.
	flags := map[string][]string{
		"dry-run":             nil,
		"log-level":           {"$LOG_LEVEL"},
		"format":              {"$RETENTION_FORMAT", "$RETENTION_OUTPUT"},
		"output":              nil, // the former name of --format
		"source":              {"$RETENTION_SOURCE"},
		"chunk-size":          {"$RETENTION_CHUNK_SIZE"},
		"concurrency":         {"$RETENTION_CONCURRENCY"},
		"rate":                {"$RETENTION_RATE"},
		"backoff-base":        {"$RETENTION_BACKOFF_BASE"},
		"backoff-max":         {"$RETENTION_BACKOFF_MAX"},
		"max-attempts":        {"$RETENTION_MAX_ATTEMPTS"},
		"request-timeout":     {"$RETENTION_REQUEST_TIMEOUT"},
		"abort-above":         {"$RETENTION_ABORT_ABOVE"},
		"abort-above-percent": {"$RETENTION_ABORT_ABOVE_PERCENT"},
		"max-deletions":       {"$RETENTION_MAX_DELETIONS"},
		"shutdown-grace":      {"$RETENTION_SHUTDOWN_GRACE"},
		"page-size":           {"$RETENTION_PAGE_SIZE"},
		"shard-index":         {"$RETENTION_SHARD_INDEX", "$JOB_COMPLETION_INDEX"},
		"shard-count":         {"$RETENTION_SHARD_COUNT"},
		"pushgateway-url":     {"$RETENTION_PUSHGATEWAY_URL"},
		"estimate":            {"$RETENTION_ESTIMATE"},
		"allow-insecure-url":  {"$RETENTION_ALLOW_INSECURE_URL"},
		"full-sync":           {"$RETENTION_FULL_SYNC"},
		"changed-column":      {"$RETENTION_CHANGED_COLUMN"},
		"sync-overlap":        {"$RETENTION_SYNC_OVERLAP"},
		"full-sync-every":     {"$RETENTION_FULL_SYNC_EVERY"},
	}
	listed := regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(help, -1)
	var names []string
	for _, m := range listed {
		names = append(names, m[1])
	}
	require.ElementsMatch(t, mapsKeys(flags), names, "the run flags in help")
	for name, vars := range flags {
		entry := regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(name) + `\b.*\n.*$`).FindString(help)
		for _, v := range vars {
			require.Contains(t, entry, v, "flag --%s", name)
		}
	}

	// The help matches what the flags really read: each RETENTION_ variable sets its flag.
	var o runOptions
	fs := runFlags(&o)
	for name, vars := range flags {
		for _, v := range vars {
			if strings.HasPrefix(v, "$RETENTION_") {
				require.Contains(t, fs.env[name], strings.TrimPrefix(v, "$"), "flag --%s", name)
			}
		}
	}
}

func mapsKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestHostileSource gives --source values that must never reach SQL. The database is a closed
// port: had the program tried it, the error would be a connection error with exit 5.
func TestHostileSource(t *testing.T) {
	t.Parallel()
	env := offline(t)
	for _, src := range []string{
		"x", "a.b.c", `"a".b`, "public.x;drop table y", "a b.c", "public." + strings.Repeat("a", 64),
		"", ".", "public.", "1abc.t", "public.t--", "public.t'", "pg_catalog.pg_class)",
	} {
		t.Run(fmt.Sprintf("%q", src), func(t *testing.T) {
			t.Parallel()
			for _, args := range [][]string{{"run", "--source", src}, {"run", "--dry-run", "--source=" + src}} {
				r := run(t, env, args...)
				require.Equal(t, exitcode.Usage, r.code, "%s", r)
				require.Contains(t, r.stderr, "invalid source", "%s", r)
				require.NotContains(t, r.stderr, "connect", "%s", r)
			}
			r := run(t, with(env, "RETENTION_SOURCE", src), "run", "--dry-run")
			if src == "" { // an empty variable is no setting: the default source, then the database
				require.Equal(t, exitcode.Fatal, r.code, "%s", r)
				return
			}
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, "invalid source", "%s", r)
		})
	}
}

func TestSourceChecks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `CREATE VIEW public.naive AS
		SELECT character_id, session_id, last_active_at::timestamp AS last_active_at FROM retention.sessions`)
	b.exec(t, `CREATE VIEW public.numbers AS
		SELECT 1 AS character_id, session_id, last_active_at FROM retention.sessions`)
	b.exec(t, `CREATE VIEW public.partial AS SELECT character_id, session_id FROM retention.sessions`)
	b.exec(t, `CREATE SEQUENCE public.seq`)
	b.seedWorld(t)
	before := b.dump(t, "runs", "deletions")

	tests := []struct {
		source string
		stderr []string
	}{
		{"public.missing", []string{"source public.missing", "no such table"}},
		{"missing.sessions", []string{"no such table"}},
		{"public.naive", []string{"last_active_at is timestamp without time zone", "AT TIME ZONE"}},
		{"public.numbers", []string{"column character_id is integer"}},
		{"public.partial", []string{"missing column last_active_at"}},
		{"public.seq", []string{"is not a table or view"}},
	}
	for _, tt := range tests {
		for _, dry := range []bool{false, true} {
			args := []string{"run", "--source", tt.source}
			if dry {
				args = append(args, "--dry-run")
			}
			r := b.run(t, args...)
			require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
			for _, s := range tt.stderr {
				require.Contains(t, r.stderr, s, "%v", args)
			}
		}
	}
	require.Equal(t, before, b.dump(t, "runs", "deletions"), "a rejected source writes nothing")
	require.Empty(t, b.gate.requested())

	// Names fold to lower case like unquoted SQL names, and a fixed view works.
	b.exec(t, `CREATE VIEW public.fixed AS
		SELECT character_id, session_id, last_active_at::timestamp AT TIME ZONE 'UTC' AS last_active_at FROM retention.sessions`)
	r := b.run(t, "run", "--dry-run", "--source", "PUBLIC.Fixed")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "source public.fixed")
}

// settings returns the settings recorded on the only run row.
func (b *bundle) settings(t *testing.T) map[string]any {
	t.Helper()
	raw := b.strings(t, `SELECT settings::text FROM retention.runs`)
	require.Len(t, raw, 1)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw[0]), &s))
	return s
}

func TestFlagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := with(b.env, "RETENTION_CHUNK_SIZE", "7", "RETENTION_CONCURRENCY", "3", "RETENTION_MAX_ATTEMPTS", "abc")
	r := run(t, env, "run", "--chunk-size", "5", "--max-attempts=2", "--page-size", "50")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	s := b.settings(t)
	require.EqualValues(t, 5, s["chunk_size"], "the flag wins over RETENTION_CHUNK_SIZE")
	require.EqualValues(t, 2, s["max_attempts"], "a flag set keeps an invalid variable from being read")
	require.EqualValues(t, 3, s["concurrency"], "RETENTION_CONCURRENCY wins over the default")
	require.EqualValues(t, 50, s["page_size"])
	require.EqualValues(t, 0, s["rate"], "RETENTION_RATE=0")
	require.Equal(t, "1ms", s["backoff_base"])
	require.Equal(t, "30s", s["request_timeout"], "the default")
	require.Equal(t, "retention.sessions", s["source"])
	require.Equal(t, b.srv.URL, s["api_url"])
}

// dryRunShard returns the shard a dry-run reports with env.
func dryRunShard(t *testing.T, env map[string]string, args ...string) job.Shard {
	t.Helper()
	r := run(t, env, append([]string{"run", "--dry-run", "--output", "json"}, args...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	return s.Shard
}

func TestShardFromEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := with(b.env, "RETENTION_SHARD_COUNT", "3")
	require.Equal(t, job.Shard{Index: 2, Count: 3}, dryRunShard(t, with(env, "JOB_COMPLETION_INDEX", "2")),
		"an indexed Kubernetes Job sets JOB_COMPLETION_INDEX")
	require.Equal(t, job.Shard{Index: 1, Count: 3}, dryRunShard(t, with(env, "JOB_COMPLETION_INDEX", "2", "RETENTION_SHARD_INDEX", "1")),
		"RETENTION_SHARD_INDEX comes first")
	require.Equal(t, job.Shard{Index: 0, Count: 3}, dryRunShard(t, with(env, "JOB_COMPLETION_INDEX", "2"), "--shard-index", "0"),
		"the flag wins")
	require.Equal(t, job.Shard{Index: 0, Count: 1}, dryRunShard(t, b.env))
}

func TestAPIKeyFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	file := filepath.Join(t.TempDir(), "api-key")
	require.NoError(t, os.WriteFile(file, []byte(testKey+"\n"), 0o600))
	r := run(t, with(b.env, "CONVAI_API_KEY", "", "CONVAI_API_KEY_FILE", file), "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, eligible, b.fakeDeleted(), "the fake accepted the key read from the file")
	require.Equal(t, eligible, b.recordedDeleted(t))
}

func TestDryRunNeedsNoKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	r := run(t, with(b.env, "CONVAI_API_KEY", "", "CONVAI_API_URL", ""), "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, fmt.Sprintf("Would delete %d sessions", len(eligible)))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`))
}
