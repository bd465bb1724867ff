package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// A mistyped flag is named with two dashes and the nearest flag is suggested; exit 2, before
// anything is read.
func TestUnknownFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--dry-rnu"}, "run: unknown flag --dry-rnu; did you mean --dry-run? (retention run --help lists the flags)"},
		{[]string{"run", "--concurency", "4"}, "did you mean --concurrency?"},
		{[]string{"run", "--max-del", "4"}, "did you mean --max-deletions?"},
		{[]string{"sync", "--full"}, "did you mean --full-sync?"},
		{[]string{"run", "--zzzzzz"}, "run: unknown flag --zzzzzz (retention run --help lists the flags)"},
		{[]string{"run", "--rate"}, "flag needs an argument: --rate"},
		{[]string{"run", "--rate", "fast"}, `invalid value "fast" for flag --rate`},
	} {
		r := run(t, env, tt.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tt.args, r)
		require.Contains(t, r.stderr, tt.want, "%v", tt.args)
		require.NotContains(t, r.stderr, "flag provided but not defined", "%v", tt.args)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"dry-rnu", "dry-run", 2}, {"concurency", "concurrency", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}} {
		require.Equal(t, tt.want, editDistance(tt.a, tt.b), "%q %q", tt.a, tt.b)
	}
}

// Each command has help of its own, by "retention help COMMAND" or "COMMAND --help", and every
// one of them ends with the environment and the exit codes.
func TestHelpPerCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	whole := run(t, env, "help")
	require.Equal(t, exitcode.OK, whole.code)
	for _, cmd := range []string{"run", "schedule", "migrate", "sync", "report", "policy", "plan", "audit", "verify", "discover", "erase"} {
		r := run(t, env, "help", cmd)
		require.Equal(t, exitcode.OK, r.code, "%s: %s", cmd, r)
		require.NotEqual(t, whole.stdout, r.stdout, "help %s is the command's own", cmd)
		require.Contains(t, r.stdout, "environment:", cmd)
		require.Contains(t, r.stdout, "exit codes:", cmd)
		require.Contains(t, r.stdout, "143  terminated by SIGTERM", cmd)
		own := run(t, env, cmd, "--help")
		require.Equal(t, exitcode.OK, own.code, "%s --help: %s", cmd, own)
		switch cmd {
		case "policy", "plan", "audit": // commands of subcommands: --help gives their usage line
			require.Contains(t, own.stdout+own.stderr, "usage:", cmd)
		default:
			require.Equal(t, r.stdout, own.stdout, "help %s and %s --help say the same", cmd, cmd)
		}
	}
	r := run(t, env, "help", "nope")
	require.Equal(t, exitcode.Usage, r.code)
}

// The run summary's JSON is snake_case throughout, and a time the run does not know is absent,
// never year 1.
func TestSummaryJSONIsSnakeCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c-none', '1 day')`)
	b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('c-none', 'kept')`)
	r := b.run(t, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, `"shard": {`)
	require.Contains(t, r.stdout, `"index": 0`)
	require.Contains(t, r.stdout, `"count": 1`)
	require.NotContains(t, r.stdout, `"Index"`)
	require.NotContains(t, r.stdout, "0001-01-01")
}
