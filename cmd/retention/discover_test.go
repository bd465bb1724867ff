package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/policy"
)

func TestDiscoverCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.fake.AddSession("c-two", "lost-old", time.Now().Add(-60*24*time.Hour))
	b.fake.AddSession("c-two", "lost-new", time.Now().Add(-time.Hour))

	r := b.run(t, "discover", "--dry-run", "--character", "c-two")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "dry-run: nothing was added.")
	require.Regexp(t, `(?m)^c-two\s+2\s+2\s+1\s+1\s+0\s+0\s+0\s*$`, r.stdout)

	r = b.run(t, "discover")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `(?m)^c-two\s+2\s+2\s+1\s+1\s+0\s+0\s+1\s*$`, r.stdout)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions WHERE session_id = 'lost-old'`))

	r = b.run(t, "report", "--format", "table")
	require.Regexp(t, `(?m)^c-two\s.*\s1\s+0\s+0\s+0\s*$`, r.stdout, "the report shows the discovered session (and none in memory)")

	b.fake.SetAPIKey("rotated")
	r = b.run(t, "discover")
	require.Equal(t, exitcode.KeyRejected, r.code, "%s", r)
	require.NotContains(t, r.stdout+r.stderr, testKey)
}

// A details answer dated far in the future and a listed ID too long to be one are skipped and
// counted (MALFORMED); discover goes on and exits 0.
func TestDiscoverCommandSkipsMalformed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	old := time.Now().Add(-60 * 24 * time.Hour)
	b.fake.AddSession("c-two", "lost-old", old)
	b.fake.AddSession("c-two", "from-the-future", old, time.Now().Add(30*24*time.Hour))
	b.fake.AddSession("c-two", strings.Repeat("x", 10*policy.MaxIDLength), old)

	r := b.run(t, "discover", "--character", "c-two")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `(?m)^CHARACTER\s+LISTED\s+NOT STORED\s+EXPIRED\s+NOT YET EXPIRED \(LIST DATE\)\s+NO TIMESTAMP\s+MALFORMED\s+ADDED\s+NOTE$`, r.stdout)
	require.Regexp(t, `(?m)^c-two\s+3\s+2\s+1\s+0\s+0\s+2\s+1\s*$`, r.stdout)
	require.Equal(t, []string{"lost-old"}, b.strings(t, `SELECT session_id FROM retention.discoveries`))
}
