package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// requireWorldDeleted checks that a run deleted exactly the eligible sessions of seedWorld, at
// the fake and in the database, each once, and sent nothing else.
func (b *bundle) requireWorldDeleted(t *testing.T, eligible []string) {
	t.Helper()
	require.Equal(t, eligible, b.fakeDeleted(), "deleted at the fake")
	require.Equal(t, eligible, b.recordedDeleted(t), "recorded deleted, once each")
	require.Equal(t, eligible, b.gate.requested(), "requested once each, nothing else")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status <> 'deleted'`))
}

func TestRunText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	// No estimate beside the run: the lines below are fixed, and a count racing the run's
	// deletions may add one saying it differed (TestSummaryTextIsTruthful).
	r := b.run(t, "run", "--chunk-size", "2", "--concurrency", "2", "--estimate=false")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	b.requireWorldDeleted(t, eligible)

	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	m := regexp.MustCompile(`^run (\d+) succeeded: (\d+) selected, (\d+) deleted, (\d+) failed \(cut-off (\S+), source retention\.sessions\)$`).
		FindStringSubmatch(lines[0])
	require.NotNil(t, m, "first line: %q", lines[0])
	runID, _ := strconv.Atoi(m[1])
	require.Equal(t, []string{strconv.Itoa(len(eligible)), strconv.Itoa(len(eligible)), "0"}, m[2:5])
	cutoff, err := time.Parse(time.RFC3339, m[5])
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("skipped %d: held %d", worldSkippedHeld, worldSkippedHeld), lines[1])
	require.Regexp(t, `^results log: \d+ leaves, root [0-9a-f]{64} \(unsigned: no RETENTION_CHECKPOINT_KEY_FILE\)$`, lines[2])
	require.Regexp(t, `^CHARACTER\s+POLICY\s+MAX AGE\s+SELECTED\s+DELETED\s+FAILED\s+HELD\s+OLDEST ACTIVITY$`, lines[3])
	rows := map[string][]string{}
	for _, l := range lines[4:] {
		f := strings.Fields(l)
		rows[f[0]] = f[1:]
	}
	require.Equal(t, []string{"default_policy", "30", "days", "3", "3", "0", "1"}, rows["c-def"][:7])
	require.Equal(t, []string{"own_policy", "7", "days", "2", "2", "0", "0"}, rows["c-own"][:7])
	require.Equal(t, []string{"default_policy", "30", "days", "3", "3", "0", "0"}, rows["c-two"][:7])
	require.Equal(t, []string{"held", "30", "days", "0", "0", "0", "2", "-"}, rows["c-held"], "held, nothing selected")
	require.Equal(t, []string{"8", "8", "0", "3"}, rows["(total)"][:4], "the totals row")
	require.Len(t, rows, 5, "c-off and its disabled policy select nothing; then the totals")

	// The run row agrees with the output.
	var status string
	var selected, deleted, failed, skipped int
	var rowCutoff time.Time
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
		SELECT status, selected, deleted, failed, skipped, cutoff FROM retention.runs WHERE id = $1`, runID).
		Scan(&status, &selected, &deleted, &failed, &skipped, &rowCutoff))
	require.Equal(t, "succeeded", status)
	require.Equal(t, []int{len(eligible), len(eligible), 0, worldSkippedHeld}, []int{selected, deleted, failed, skipped})
	require.True(t, rowCutoff.Truncate(time.Second).Equal(cutoff), "cut-off %s vs %s", rowCutoff, cutoff)

	// Run again: nothing is left, nothing is sent again.
	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `^run \d+ succeeded: 0 selected, 0 deleted, 0 failed`, r.stdout)
	b.requireWorldDeleted(t, eligible)
}

func TestRunJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	r := b.run(t, "run", "--output", "json", "--chunk-size", "1")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	b.requireWorldDeleted(t, eligible)
	require.Len(t, b.fake.Requests(), len(eligible), "one request per session with --chunk-size 1")

	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw), "%s", r)
	for _, k := range []string{"run_id", "status", "dry_run", "selected", "deleted", "failed", "skipped", "characters"} {
		require.Contains(t, raw, k)
	}
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	require.Equal(t, job.StatusSucceeded, s.Status)
	require.False(t, s.DryRun)
	require.NotZero(t, s.RunID)
	require.EqualValues(t, len(eligible), s.Selected)
	require.EqualValues(t, len(eligible), s.Deleted)
	require.Zero(t, s.Failed)
	require.EqualValues(t, worldSkippedHeld, s.Skipped)
	require.Equal(t, map[string]int64{"held": worldSkippedHeld}, s.SkippedByReason)
	var chars []string
	for _, c := range s.Characters {
		chars = append(chars, c.CharacterID)
		require.Empty(t, c.SessionIDs, "a real run lists no IDs")
	}
	require.Equal(t, []string{"c-def", "c-held", "c-own", "c-two"}, chars)
	require.Equal(t, []string{"succeeded"}, b.strings(t, `SELECT status FROM retention.runs WHERE id = $1`, s.RunID))
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)

	// A real run with a budget leaves rows behind, and sessions to delete.
	r := b.run(t, "run", "--max-deletions", "3")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "the deletion budget (--max-deletions) was reached")
	done := b.recordedDeleted(t)
	require.Len(t, done, 3)
	remaining := map[string][]string{}
	left := 0
	for _, id := range eligible {
		if !subset([]string{id}, done) {
			char, sess, _ := strings.Cut(id, "/")
			remaining[char] = append(remaining[char], sess)
			left++
		}
	}

	before := b.dump(t, "runs", "deletions", "policies", "holds", "sessions", "schema_version")
	requests := len(b.gate.requested())
	env := with(b.env, "CONVAI_API_KEY", "")

	r = run(t, env, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.True(t, s.DryRun)
	require.Zero(t, s.RunID)
	require.Equal(t, job.StatusDryRun, s.Status, "a dry-run says so, not succeeded")
	require.EqualValues(t, left, s.Selected)
	require.Zero(t, s.Deleted)
	require.Equal(t, map[string]int64{"held": worldSkippedHeld}, s.SkippedByReason)
	got := map[string][]string{}
	for _, c := range s.Characters {
		if len(c.SessionIDs) > 0 || c.Selected > 0 {
			require.EqualValues(t, len(c.SessionIDs), c.Selected, "character %s", c.CharacterID)
			got[c.CharacterID] = c.SessionIDs
		}
	}
	for char := range remaining {
		require.ElementsMatch(t, remaining[char], got[char], "character %s", char)
	}
	require.Len(t, got, len(remaining))

	r = run(t, env, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.True(t, strings.HasPrefix(r.stdout, fmt.Sprintf("dry-run: nothing was sent or written. Would delete %d sessions", left)), "%s", r)
	require.Regexp(t, `(?m)^CHARACTER\s+POLICY\s+MAX AGE\s+WOULD DELETE\s+HELD\s+OLDEST ACTIVITY$`, r.stdout)
	require.Regexp(t, `(?m)^c-two\s+default_policy\s+30 days\s+3\s+0\s`, r.stdout)
	require.Regexp(t, `(?m)^c-own\s+own_policy\s+7 days\s+2\s+0\s`, r.stdout)

	require.Equal(t, before, b.dump(t, "runs", "deletions", "policies", "holds", "sessions", "schema_version"),
		"a dry-run writes nothing")
	require.Len(t, b.gate.requested(), requests, "a dry-run sends nothing")
}

func TestPartialRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	rejected := []string{"c-def-old-2", "c-two-old-0"}
	b.fake.SetRejectIDs(rejected...)
	for _, id := range rejected { // Convai still has them: the refusals are not settled
		b.fake.AddSession(strings.Join(strings.Split(id, "-")[:2], "-"), id)
	}

	r := b.run(t, "run", "--output", "json")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	var s job.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "%s", r)
	require.Equal(t, job.StatusPartial, s.Status)
	require.EqualValues(t, len(eligible)-2, s.Deleted)
	require.EqualValues(t, 2, s.Failed)

	var want []string
	for _, id := range eligible {
		if id != "c-def/c-def-old-2" && id != "c-two/c-two-old-0" {
			want = append(want, id)
		}
	}
	require.Equal(t, want, b.recordedDeleted(t))
	require.Equal(t, want, b.fakeDeleted())
	require.Equal(t, []string{"c-def/c-def-old-2 400", "c-two/c-two-old-0 400"}, b.strings(t, `
		SELECT character_id || '/' || session_id || ' ' || http_status FROM retention.deletions
		WHERE status = 'failed' AND error LIKE 'rejected with HTTP 400%'`))
	require.Equal(t, []string{"partial"}, b.strings(t, `SELECT status FROM retention.runs`))

	// The next run tries the failed ones again, and only those.
	b.fake.SetRejectIDs()
	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `^run \d+ succeeded: 2 selected, 2 deleted, 0 failed`, r.stdout)
	require.Equal(t, eligible, b.recordedDeleted(t))
	require.Equal(t, eligible, b.fakeDeleted())
}

func TestLocked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// The run lock of shard 0 of 1: class "RETE", key count<<16 | index (source/runs.go).
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(1380275269, 65536)`).Scan(&ok))
	require.True(t, ok)

	r := b.run(t, "run")
	require.Equal(t, exitcode.Locked, r.code, "%s", r)
	require.Contains(t, r.stderr, "another retention run holds the lock")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`), "no run row")
	require.Empty(t, b.gate.requested())

	// A dry-run takes no lock.
	r = b.run(t, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_advisory_unlock(1380275269, 65536)`).Scan(&ok))
	require.True(t, ok)
	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
}

func TestKeyRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.fake.SetAPIKey("another-key-entirely")

	r := b.run(t, "run", "--chunk-size", "1")
	require.Equal(t, exitcode.KeyRejected, r.code, "%s", r)
	require.Contains(t, r.stderr, "the API rejected the key")
	require.Contains(t, r.stdout, " failed: ")
	require.Empty(t, b.fake.Deleted())
	require.Equal(t, []string{"failed"}, b.strings(t, `SELECT status FROM retention.runs`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status <> 'failed'`),
		"nothing deleted, nothing left pending")
	require.NotZero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE http_status = 401`))
}

func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	env := with(offline(t), "CONVAI_API_URL", "http://127.0.0.1:9")
	for _, args := range [][]string{{"run"}, {"run", "--dry-run"}, {"migrate"}} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.Fatal, r.code, "%v: %s", args, r)
		require.Contains(t, r.stderr, "connect to database", "%v", args)
	}
}

// TestRunListMemoryLine: a run that lists a character to settle a refusal says in its text
// summary what that list said of long-term memory, and records it under the run.
func TestRunListMemoryLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.fake.SetRejectIDs("c-def-old-2")
	b.fake.AddSession("c-def", "c-def-old-2")
	b.fake.SetAddedToMemory("c-def", "c-def-old-2", true)

	r := b.run(t, "run")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	require.Regexp(t, `(?m)^the run's lists: 1 character list\(s\), \d+ sessions: 1 added to long-term memory, \d+ not added, 0 unstated$`, r.stdout)
	require.Equal(t, []string{"c-def/c-def-old-2"}, b.strings(t, `
		SELECT m.character_id || '/' || m.session_id FROM retention.memory_sightings m JOIN retention.runs r ON r.id = m.run_id`))
}
