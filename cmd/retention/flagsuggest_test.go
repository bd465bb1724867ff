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
