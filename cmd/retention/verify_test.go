package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// witnesses gives every character with a deletion a live session, in the source and at the
// fake: verify trusts a list only when it shows a session the job knows is live.
func (b *bundle) witnesses(t *testing.T) {
	t.Helper()
	for _, c := range b.strings(t, `SELECT DISTINCT character_id FROM retention.deletions WHERE status = 'deleted'`) {
		b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES ($1, $1 || '-live', now())`, c)
		b.fake.AddSession(c, c+"-live")
	}
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	require.Equal(t, exitcode.OK, b.run(t, "run").code)
	require.Len(t, b.fake.Deleted()["c-two"], 3)
	b.witnesses(t)

	r := b.run(t, "verify")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "checked "+strconv.Itoa(len(eligible))+" deleted sessions")
	require.Regexp(t, `(?m)^c-two\s+3\s+3\s+0\s*$`, r.stdout)

	// A deleted session shows up at Convai again: verify fails, and the next run sends it.
	b.fake.AddSession("c-two", "c-two-old-1")
	r = b.run(t, "verify", "--character", "c-two", "--output", "json")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	var s job.VerifySummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.EqualValues(t, 1, s.Present)
	require.Equal(t, []string{"c-two-old-1"}, s.Characters[0].PresentIDs)
	require.NotContains(t, r.stdout+r.stderr, testKey)

	r = b.run(t, "run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var sum job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum))
	require.EqualValues(t, 1, sum.Deleted, "only the session found present is sent again")
	require.Equal(t, exitcode.OK, b.run(t, "verify", "--sample", "1").code)

	// The report shows the verification section.
	r = b.run(t, "report", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var rep struct {
		Total struct {
			Deleted, Verified, Present int64
			LastVerified               *string `json:"last_verified"`
		} `json:"verification_total"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
	require.EqualValues(t, len(eligible)+1, rep.Total.Deleted, "the refuted deletion and the new one")
	require.EqualValues(t, 1, rep.Total.Present)
	// Every first deletion but the refuted one, and the new one if the sample of one picked it.
	require.GreaterOrEqual(t, rep.Total.Verified, int64(len(eligible)-1))
	require.LessOrEqual(t, rep.Total.Verified, int64(len(eligible)))
	require.NotNil(t, rep.Total.LastVerified)
	r = b.run(t, "report", "--format", "table")
	require.Regexp(t, `Verified against Convai's list \(all time\): \d+ of `+strconv.Itoa(len(eligible)+1)+` deleted sessions, 1 found present; 0 sessions found`, r.stdout)

	// The session's evidence shows the refuted deletion and the new one.
	r = b.run(t, "report", "--session", "c-two-old-1", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var ev struct {
		Findings []struct {
			State    string
			Attempts []struct {
				Status         string
				FoundPresentAt *string `json:"found_present_at"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev), "%s", r)
	require.Equal(t, "deleted", ev.Findings[0].State)
	require.Len(t, ev.Findings[0].Attempts, 2)
	require.NotNil(t, ev.Findings[0].Attempts[0].FoundPresentAt, "the first deletion was refuted")
	require.Nil(t, ev.Findings[0].Attempts[1].FoundPresentAt)
	r = b.run(t, "report", "--session", "c-two-old-1", "--format", "table")
	require.Contains(t, r.stdout, "PRESENT at Convai")

	// A rejected key is exit 4, and nothing is recorded as verified.
	before := b.count(t, `SELECT count(*) FROM retention.verifications`)
	b.fake.SetAPIKey("rotated")
	r = b.run(t, "verify")
	require.Equal(t, exitcode.KeyRejected, r.code, "%s", r)
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM retention.verifications`))
	require.NotContains(t, r.stdout+r.stderr, testKey)
}

func TestVerifyUsage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, args := range [][]string{
		{"verify", "--sample", "-1"},
		{"verify", "--since", "yesterday"},
		{"verify", "--output", "xml"},
		{"verify", "extra"},
	} {
		r := b.run(t, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
	}
	r := b.run(t, "verify", "--help")
	require.Equal(t, exitcode.OK, r.code)
	require.True(t, strings.Contains(r.stdout+r.stderr, "--sample"), "%s", r)
}

func TestVerifyRechecksErasedMemory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES ('c1', 's1', now(), 'u1')`)
	b.fake.AddSession("c1", "s1")
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-s1", SessionID: "s1"})
	require.Equal(t, exitcode.OK, b.run(t, "erase", "--end-user", "u1", "--reason", "ticket 70").code)
	require.Equal(t, exitcode.OK, b.run(t, "run").code)
	require.Empty(t, b.fake.Memories("c1", "u1"))
	b.witnesses(t)

	// The memory is back: verify records the refutation and exits 1.
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back"})
	r := b.run(t, "verify")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	require.Contains(t, r.stdout, "erased memories re-checked: 0 stayed gone, 1 found again (the next run erases them again), 0 not checked")
	require.Contains(t, r.stdout, "found again: u1/c1")
	r = b.run(t, "verify", "--format", "json")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	var found job.VerifySummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &found), "%s", r)
	require.EqualValues(t, 1, found.MemoryLeft.MemoriesFoundAgain, "read after the re-checks")

	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `erased again, as verify found memory after their erasure: completed requests \[\d+\]`, r.stdout)
	require.Empty(t, b.fake.Memories("c1", "u1"), "erased again")
	r = b.run(t, "verify", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var s job.VerifySummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.Equal(t, &job.MemoryRechecks{StayedGone: 1}, s.MemoryRechecks)
	require.Zero(t, s.MemoryLeft.MemoriesFoundAgain)

	r = b.run(t, "report", "--end-user", "u1", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `(?m)^\d+\s+c1\s+\d+\s+FOUND AGAIN\s+1\s+1\s`, r.stdout)
	require.Regexp(t, `(?m)^\d+\s+c1\s+\d+\s+stayed gone\s+0\s+0\s`, r.stdout)
}
