package main

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// fuzzKey is the API key in the environment of the fuzzed command lines; it must never be
// printed.
const fuzzKey = "fuzz-secret-key-4Qx9Zr"

// runFlagNames are the flags of "retention run" the fuzzers set.
var runFlagNames = []string{
	"dry-run", "output", "source", "log-level", "chunk-size", "concurrency", "rate", "backoff-base",
	"backoff-max", "max-attempts", "request-timeout", "max-deletions", "shutdown-grace", "page-size",
	"shard-index", "shard-count", "pushgateway-url", "estimate",
}

// runEnvNames are the variables "retention run" reads besides DATABASE_URL and the key.
var runEnvNames = []string{
	"RETENTION_OUTPUT", "RETENTION_SOURCE", "RETENTION_CHUNK_SIZE", "RETENTION_CONCURRENCY", "RETENTION_RATE",
	"RETENTION_BACKOFF_BASE", "RETENTION_BACKOFF_MAX", "RETENTION_MAX_ATTEMPTS", "RETENTION_REQUEST_TIMEOUT",
	"RETENTION_MAX_DELETIONS", "RETENTION_SHUTDOWN_GRACE", "RETENTION_PAGE_SIZE", "RETENTION_SHARD_INDEX",
	"RETENTION_SHARD_COUNT", "RETENTION_PUSHGATEWAY_URL", "RETENTION_ESTIMATE", "JOB_COMPLETION_INDEX",
	"LOG_LEVEL", "CONVAI_API_URL", "RETENTION_DRY_RUN",
}

// closedDatabaseURL returns a DATABASE_URL on a local port where nothing listens.
func closedDatabaseURL(f *testing.F) string {
	f.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f, err)
	addr := l.Addr().String()
	require.NoError(f, l.Close())
	return "postgres://retention@" + addr + "/retention?sslmode=disable&connect_timeout=5"
}

// FuzzRunConfig gives "retention run" (dry or not) one flag and one environment variable with
// any value, against a database that cannot be reached. Whatever the values, the program
// refuses them (exit 2) or gets as far as connecting (exit 5): never a panic, never another
// code, and the API key in the environment never appears in its output.
func FuzzRunConfig(f *testing.F) {
	for _, s := range []struct {
		flag     uint8
		value    string
		env      uint8
		envValue string
		dry      bool
	}{
		{4, "100", 0, "", true},
		{4, "0", 2, "-1", false},
		{4, "10001", 3, "1e3", true},
		{5, "257", 4, "NaN", false},
		{6, "NaN", 4, "+Inf", true},
		{6, "-0.5", 5, "-1s", false},
		{6, "Inf", 6, "1ns", true},
		{7, "0s", 7, "0", false},
		{8, "1h", 8, "9223372036854775807ns", true},
		{9, "101", 9, "-9223372036854775808", false},
		{10, "0", 10, "2562047h47m16.854775807s", true},
		{11, "-1", 11, "0", false},
		{12, "-1s", 12, "x", true},
		{13, "0", 13, "1024", false},
		{14, "1", 14, "-1", true},
		{15, "1025", 16, "0", false},
		{16, "ftp://gateway", 15, "maybe", true},
		{16, "http://user:" + fuzzKey + "@gw:9091", 17, "TRACE", false},
		{1, "json", 17, "debug", true},
		{1, "xml", 18, "http://user:pw@api.example.com/", false},
		{2, "A.B", 18, "ftp://x", true},
		{2, "public.x;drop table y", 1, "public." + fuzzKey, false},
		{2, fuzzKey + ".t", 0, fuzzKey, true},
		{3, "debug", 18, "http://127.0.0.1:9/" + fuzzKey, false},
		{3, "LOUD", 19, "true", false},
		{0, "false", 0, "json", true},
		{0, "true", 0, "text", false},
		{0, "yes", 2, "99999999999999999999", true},
		{17, "false", 6, "\x00", true},
		{13, "2147483648", 11, "1", false},
		{4, "💥", 1, "пример.таблица", true},
		{2, strings.Repeat("a", 64) + ".b", 1, "a.b.c", false},
	} {
		f.Add(s.flag, s.value, s.env, s.envValue, s.dry)
	}
	dsn := closedDatabaseURL(f)
	f.Fuzz(func(t *testing.T, flagIdx uint8, value string, envIdx uint8, envValue string, dry bool) {
		args := []string{"run"}
		if dry {
			args = append(args, "--dry-run")
		}
		args = append(args, "--"+runFlagNames[int(flagIdx)%len(runFlagNames)]+"="+value)
		env := map[string]string{"DATABASE_URL": dsn, "CONVAI_API_KEY": fuzzKey, "CONVAI_API_URL": "http://127.0.0.1:9"}
		env[runEnvNames[int(envIdx)%len(runEnvNames)]] = envValue

		r := run(t, env, args...)
		require.Contains(t, []int{exitcode.Usage, exitcode.Fatal}, r.code, "%q %v\n%s", args, env, r)
		require.NotContains(t, r.stdout, fuzzKey, "%q", args)
		require.NotContains(t, r.stderr, fuzzKey, "%q", args)
		if r.code == exitcode.Fatal {
			require.Contains(t, r.stderr, "connect to database", "%q %v\n%s", args, env, r)
		}
	})
}

// TestOutOfRangeSettings gives settings that parse but make no sense, to a run against a real
// database. None may crash the program (a crash exits 2 as well, so the output tells them
// apart) or leave a run behind: a rate that is not a number is refused with exit 2 naming it,
// like --chunk-size=0; so is a page size over 100,000.
func TestOutOfRangeSettings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--chunk-size=0"}, "chunk-size"},
		{[]string{"--rate=NaN"}, "rate"},
		{[]string{"--rate=+Inf"}, "rate"},
		{[]string{"--page-size=100001"}, "page-size"},
		{[]string{"--page-size=2000000000"}, "page-size"},
		{[]string{"--page-size=1000000000000000000"}, "page-size"},
	} {
		for _, dry := range []bool{true, false} {
			args := append([]string{"run"}, tt.args...)
			if dry {
				args = append(args, "--dry-run")
			}
			t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
				// Not parallel: each one that is not refused runs on the shared database. A
				// process, not Main: a setting that crashes the program must not take the tests.
				r := b.start(t, args...).wait(t)
				crashed := strings.Contains(r.stderr, "panic: ") || strings.Contains(r.stderr, "fatal error: ")
				require.False(t, crashed, "the program crashed\n%s", excerpt(r))
				require.Equal(t, exitcode.Usage, r.code, "%s", excerpt(r))
				require.True(t, strings.Contains(r.stderr, tt.want), "the error names the setting\n%s", excerpt(r))
				require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'running'`), "no run left running")
			})
		}
	}
}

// excerpt is r with its output cut short: a crash dumps every goroutine.
func excerpt(r result) string {
	cut := func(s string) string {
		if len(s) > 2000 {
			return s[:2000] + "\n[...]"
		}
		return s
	}
	return cut(r.String())
}
