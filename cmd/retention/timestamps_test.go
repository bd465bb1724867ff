package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// badDates are last activities no session can have: PostgreSQL's infinities and a year outside
// 0001–9999 (encoding/json refuses to print one).
var badDates = []string{"infinity", "-infinity", "4713-01-01 00:00:00+00 BC"}

// seedBadDates adds to the world one session of c-bad per bad date, and one of c-def beside its
// good rows, and returns them as "character/session".
func (b *bundle) seedBadDates(t *testing.T, table string) []string {
	t.Helper()
	var bad []string
	for i, at := range badDates {
		for _, c := range []string{"c-bad", "c-def"} {
			id := c + "-date-" + string(rune('a'+i))
			b.exec(t, `INSERT INTO `+table+` (character_id, session_id, last_active_at) VALUES ($1, $2, $3::timestamptz)`, c, id, at)
			bad = append(bad, c+"/"+id)
		}
	}
	return bad
}

// Infinite and out-of-range last activities in the source: a run, a dry-run in JSON and the
// report all succeed, and count the rows as skipped (malformed); none is ever sent.
func TestOutOfRangeDatesAreMalformed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	bad := b.seedBadDates(t, "retention.sessions")
	want := map[string]int64{"held": worldSkippedHeld, "malformed": int64(len(bad))}

	r := b.run(t, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.EqualValues(t, len(eligible), s.Selected)
	require.Equal(t, want, s.SkippedByReason)

	b.requireReportReads(t, "retention.sessions")

	r = b.run(t, "run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	s = job.Summary{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.Equal(t, job.StatusSucceeded, s.Status)
	require.EqualValues(t, len(eligible), s.Deleted)
	require.Equal(t, want, s.SkippedByReason)
	b.requireWorldDeleted(t, eligible)
	for _, id := range bad {
		require.NotContains(t, b.gate.requested(), id)
	}

	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "malformed 6")
}

// The report reads a view of the app's with such rows too, through the job's set it is synced
// into (the job's own reading of a view is tested in job: TestSourceSkipsUnusableDates).
func TestReportOverAViewWithOutOfRangeDates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.exec(t, `CREATE TABLE public.src (character_id text, session_id text, last_active_at timestamptz)`)
	b.exec(t, `INSERT INTO public.src SELECT character_id, session_id, last_active_at FROM retention.sessions`)
	b.exec(t, `CREATE VIEW public.src_v AS SELECT * FROM public.src`)
	b.seedBadDates(t, "public.src")
	// The view is synced into the job's own set, which the report reads: the bad dates arrive
	// there as undated sessions.
	r := b.run(t, "sync", "--source", "public.src_v")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "6 malformed")
	b.requireReportReads(t, "public.src_v")
}

// requireReportReads checks that the report, in JSON and as text, and the evidence of each
// session seedBadDates added to src, succeed; such a session is shown undated.
func (b *bundle) requireReportReads(t *testing.T, src string) {
	t.Helper()
	r := b.run(t, "report", "--format", "json", "--source", src)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.True(t, json.Valid([]byte(r.stdout)), "%s", r)
	r = b.run(t, "report", "--source", src)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	for _, id := range []string{"c-bad-date-a", "c-bad-date-b", "c-bad-date-c"} {
		r = b.run(t, "report", "--session", id, "--format", "json", "--source", src)
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, `"reason_code": "undated"`, "%s", r)
	}
}

// A person's erasure request covers the sessions whatever their dates: the run sends them,
// recorded without a last activity, and the report reads the result.
func TestErasureOfSessionsWithOutOfRangeDates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	bad := b.seedBadDates(t, "retention.sessions")
	r := b.run(t, "erase", "--character", "c-bad", "--reason", "ticket 7")
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	r = b.run(t, "run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	var sent []string
	for _, id := range bad {
		if strings.HasPrefix(id, "c-bad/") {
			sent = append(sent, id)
		}
	}
	require.Subset(t, b.recordedDeleted(t), sent, "the request's sessions are deleted")
	require.Equal(t, len(sent), b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE character_id = 'c-bad' AND status = 'deleted' AND last_active_at IS NULL`), "recorded without a date")
	require.NotContains(t, b.gate.requested(), "c-def/c-def-date-a", "the policies still leave the others alone")

	r = b.run(t, "report", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.True(t, json.Valid([]byte(r.stdout)), "%s", r)
}
