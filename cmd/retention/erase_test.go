package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
)

func TestEraseCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)

	// Bad input: exit 2 with the reason, nothing filed.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"erase", "--reason", "r"}, "--character is required"},
		{[]string{"erase", "--character", "c-off"}, "--reason is required"},
		{[]string{"erase", "--character", "c-off", "--reason", "   "}, "--reason is required"},
		{[]string{"erase", "--character", " ", "--reason", "r"}, "invalid --character"},
		{[]string{"erase", "--character", "c-off", "--session", "a\x01b", "--reason", "r"}, "invalid --session"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "--due", "0h"}, "invalid --due"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "--due", "-3d"}, "invalid --due"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "--due", "soon"}, "invalid --due"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "--requested-at", "yesterday"}, "invalid --requested-at"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "--requested-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{[]string{"erase", "--character", "c-off", "--reason", "r", "extra"}, "unexpected argument"},
		{[]string{"erase", "--character", "c-off", "--reason", strings.Repeat("x", 1001)}, "longer than 1000"},
	} {
		r := b.run(t, tc.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tc.args, r)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.erasure_requests`))

	// c-off's policy is disabled and its sessions are 400 days old: only a request deletes them.
	// c-own-new-0 is 3 days old, under c-own's 7 days. c-held is held as a whole.
	r := b.run(t, "erase", "--character", "c-off", "--reason", "ticket 41", "--due", "72h")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `filed erasure request 1: every session of character "c-off", requested \S+ by postgres, due \S+\.`, r.stdout)
	require.Equal(t, "259200", b.strings(t, `SELECT extract(epoch FROM due_at - requested_at)::bigint::text FROM retention.erasure_requests WHERE id = 1`)[0])

	r = run(t, with(b.env, "RETENTION_ACTOR", "dpo@example.com"), "erase", "--character", "c-own", "--session", "c-own-new-0",
		"--reason", "ticket 42", "--requested-at", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339), "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var filed struct {
		ID          int64     `json:"id"`
		RequestedAt time.Time `json:"requested_at"`
		DueAt       time.Time `json:"due_at"`
		RequestedBy string    `json:"requested_by"`
		SessionID   string    `json:"session_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &filed))
	require.EqualValues(t, 2, filed.ID)
	require.Equal(t, "dpo@example.com", filed.RequestedBy)
	require.Equal(t, "c-own-new-0", filed.SessionID)
	require.Equal(t, 30*24*time.Hour, filed.DueAt.Sub(filed.RequestedAt))

	r = b.run(t, "erase", "--character", "c-held", "--session", "c-held-old-0", "--reason", "ticket 43")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, r.stderr, "known IDs: no warning")

	// The plan, the dry-run show them; the run sends them.
	r = b.run(t, "plan")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "erasure requests: 3 open, asking for 4 session(s) not yet deleted, held ones included; the next run sends the others first")
	r = b.run(t, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "erasure requests: 3 open; would send 3 of their sessions first (1 held); blocked by a hold: [3]")
	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "erasure requests: 3 open, sent first: 3 sessions deleted, 0 failed, 1 held; completed [1 2]; blocked by a hold: [3]")
	deleted := b.recordedDeleted(t)
	for _, want := range []string{"c-off/c-off-old-0", "c-off/c-off-old-1", "c-own/c-own-new-0"} {
		require.Contains(t, deleted, want)
	}
	require.NotContains(t, deleted, "c-held/c-held-old-0")

	// The report shows each request's state; the evidence names the request.
	r = b.run(t, "report", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "Erasure requests: 0 open (0 overdue), 1 blocked by a hold, 2 completed in the period")
	require.Regexp(t, `(?m)^3\s+c-held\s+c-held-old-0\s+blocked\s.*hold 1\s+ticket 43$`, r.stdout)
	r = b.run(t, "report", "--format", "csv", "--table", "erasures")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "request_id,character_id,session_id,state,overdue,")
	require.Regexp(t, `(?m)^2,c-own,c-own-new-0,completed,false,dpo@example.com,`, r.stdout)
	r = b.run(t, "report", "--format", "table", "--session", "c-own-new-0")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "under erasure request 2 (whatever its age or policy)")
	require.Contains(t, r.stdout, "erasure request 2 (c-own-new-0): completed, requested by dpo@example.com")
	r = b.run(t, "report", "--format", "table", "--session", "c-held-old-0")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "erasure request 3 (c-held-old-0): blocked")

	// The trail still verifies: the erasure claims' leaves seal the requests' terms.
	r = b.run(t, "audit", "verify")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
}

// A request naming IDs the database has never seen is filed, with a warning: a typo in a
// character's request would complete with nothing deleted.
func TestEraseWarnsOfUnknownIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	r := b.run(t, "erase", "--character", "c-own ", "--reason", "ticket 1")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stderr, `WARNING: character "c-own " has no session in retention.sessions and none recorded deleted`)
	r = b.run(t, "erase", "--character", "c-own", "--session", "never-stored", "--reason", "ticket 2")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stderr, `note: retention.sessions has no session "never-stored" of character "c-own"`)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.erasure_requests`))

	// Both are filed; the run completes the first with nothing deleted, and says so in the
	// report, and sends the second.
	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, 0, b.count(t, `SELECT sessions_completed FROM retention.erasure_status WHERE id = 1`))
	require.Contains(t, b.recordedDeleted(t), "c-own/never-stored")
}

// TestEraseRequestedByKeptWhole: --requested-by is stored as given up to the schema's 200
// characters (it was cut to 63 bytes, PostgreSQL's name length, without a word); longer is
// refused with exit 2 before anything is filed.
func TestEraseRequestedByKeptWhole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	long := "data-protection-office+erasure-requests@legal.example.com (for the person of ticket 4711)" // 88 bytes
	for i, by := range []string{long, strings.Repeat("é", 200)} {
		r := b.run(t, "erase", "--character", "c-off", "--reason", "ticket", "--requested-by", by, "--output", "json")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		var filed struct {
			RequestedBy string `json:"requested_by"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &filed))
		require.Equal(t, by, filed.RequestedBy)
		require.Equal(t, []string{by}, b.strings(t, `SELECT requested_by FROM retention.erasure_requests WHERE id = $1`, i+1))
	}
	r := b.run(t, "erase", "--character", "c-off", "--reason", "ticket", "--requested-by", strings.Repeat("x", 201))
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "--requested-by is longer than 200 characters")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.erasure_requests`))
}

// TestEraseEndUser: retention erase --end-user files an end user's request; the run deletes
// every session of that end user and no other's, erases their long-term memory with each
// character, confirmed by a list, then their record; the summary, the report's evidence and
// help say so.
func TestEraseEndUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"erase", "--end-user", " ", "--reason", "r"}, "invalid --end-user"},
		{[]string{"erase", "--end-user", "u1", "--session", "s", "--reason", "r"}, "--session and --end-user do not go together"},
		{[]string{"erase", "--character", "c1", "--end-user-record", "--reason", "r"}, "--end-user-record needs --end-user"},
		{[]string{"erase", "--end-user", "u1"}, "--reason is required"},
	} {
		r := b.run(t, tc.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tc.args, r)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.end_user_requests`))

	// u1 talked to c1 (two sessions) and c2; u2 to c1. Each session went into memory.
	for _, s := range []struct{ char, sess, user string }{
		{"c1", "s1", "u1"}, {"c1", "s2", "u1"}, {"c2", "s3", "u1"}, {"c1", "s4", "u2"},
	} {
		b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES ($1, $2, now(), $3)`,
			s.char, s.sess, s.user)
		b.fake.AddSession(s.char, s.sess, time.Now())
		b.fake.AddMemory(s.char, s.user, convaitest.Memory{ID: "m-" + s.sess, Text: "a fact", SessionID: s.sess})
	}
	r := b.run(t, "erase", "--end-user", "nobody", "--reason", "ticket 60", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stderr, `WARNING: end user "nobody" has no session in retention.sessions`)
	var filed struct {
		ID         int64    `json:"id"`
		EndUserID  string   `json:"end_user_id"`
		Characters []string `json:"characters"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &filed))
	require.Equal(t, int64(1), filed.ID)
	require.Equal(t, "nobody", filed.EndUserID)
	require.Empty(t, filed.Characters)

	r = b.run(t, "erase", "--end-user", "u1", "--end-user-record", "--reason", "ticket 61")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, `filed end user erasure request 2: every session and the long-term memory of end user "u1", then the end user's record`)
	require.Contains(t, r.stdout, "It covers 2 character(s) so far [c1 c2] and 3 session(s) in the set")

	r = b.run(t, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "end users' erasure requests: 2 open over 2 character(s); would erase long-term memory with 2 of them")
	for _, q := range b.fake.Requests() {
		require.NotContains(t, q.Endpoint, "memory", "a dry-run calls no memory endpoint")
	}

	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "end users' erasure requests: 2 open over 2 character(s); long-term memory: 2 erased, 0 pending, 0 failed; 1 end user record(s) deleted; completed [1 2]")
	require.Equal(t, []string{"c1/s1", "c1/s2", "c2/s3"}, b.recordedDeleted(t))
	require.Empty(t, b.fake.Memories("c1", "u1"))
	require.Empty(t, b.fake.Memories("c2", "u1"))
	require.Len(t, b.fake.Memories("c1", "u2"), 1)
	require.NotContains(t, b.fake.EndUsers(), "u1")

	r = b.run(t, "report", "--end-user", "u1", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, `end user erasure request 2 (every character, then the end user's record): completed, requested by`)
	require.Contains(t, r.stdout, "sessions: 3 deleted, 0 left")
	require.Regexp(t, `(?m)^c1\s+\d+\s+2\s+0\s+0\s+erased\s+\[\]$`, r.stdout)
	require.Regexp(t, `(?m)^\d+\s+c1\s+erased\s+3\s+200\s+2\s+0\s+\S+\s+\d+\s*$`, r.stdout, "a list before (2), the delete-all, a list after (0); its leaf")
	require.Regexp(t, `(?m)^\d+\s+\(end user record\)\s+erased\s+1\s+200\s+-\s+-\s+\S+\s+\d+\s*$`, r.stdout)
	require.Contains(t, r.stdout, "It cannot prove that Convai keeps no other copy")
	r = b.run(t, "report", "--end-user", "u1", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var ev struct {
		Requests []struct {
			State          string `json:"state"`
			MemoryErasures []struct {
				Status string `json:"status"`
			} `json:"memory_erasures"`
		} `json:"requests"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Len(t, ev.Requests, 1)
	require.Equal(t, "completed", ev.Requests[0].State)
	require.Len(t, ev.Requests[0].MemoryErasures, 3)
	r = b.run(t, "report", "--end-user", "u1", "--format", "csv")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.NotContains(t, r.stdout+r.stderr, testKey)

	// The memory erasure is a leaf of the log: its inclusion proof, checked offline (the runs
	// here sign no checkpoint, so the check says UNVERIFIED: audit_test.go checks a signed one).
	proof := filepath.Join(t.TempDir(), "proof.json")
	r = b.run(t, "audit", "prove", "--end-user", "u1", "--character", "c1", "--out", proof)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	r = run(t, nil, "audit", "check", "--proof", proof)
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stdout, `UNVERIFIED: the memory of end user "u1" with character "c1" is recorded erased in the tree this proof names`)
	r = b.run(t, "audit", "prove", "--end-user", "u2", "--character", "c1")
	require.NotEqual(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stderr, "no sealed memory erasure of this end user in the log")
	r = b.run(t, "audit", "prove", "--end-user", "u1", "--session", "s1")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "not both")

	r = b.run(t, "help", "erase")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "--end-user-record")
	require.Contains(t, r.stdout, "confirmed gone")
}
