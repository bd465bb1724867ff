package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
)

func evidence(t *testing.T, b *bundle, o report.SessionOptions) *report.Evidence {
	t.Helper()
	ev, err := report.Session(context.Background(), b.pool, o)
	require.NoError(t, err)
	return ev
}

// one returns the only finding of the evidence of a session.
func one(t *testing.T, b *bundle, session string) report.Finding {
	t.Helper()
	ev := evidence(t, b, report.SessionOptions{SessionID: session})
	require.Len(t, ev.Findings, 1, "%+v", ev.Findings)
	return ev.Findings[0]
}

func TestSessionDeletedAfterAFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := one(t, b, "a-f1")
	require.Equal(t, "alpha", f.CharacterID)
	require.Equal(t, report.StateDeleted, f.State)
	require.Equal(t, "deleted: confirmed at 2025-03-05 10:00:00Z by run 12, under default policy 1 (max_age 30 days; expired at 2025-03-01 12:00:00Z)", f.Reason)
	require.Len(t, f.Attempts, 2)
	first, second := f.Attempts[0], f.Attempts[1]
	require.Equal(t, []any{int64(11), "partial", "failed", int32(503), "HTTP 503: unavailable"},
		[]any{first.RunID, first.RunStatus, first.Status, *first.HTTPStatus, *first.Error})
	require.Equal(t, []any{int64(12), "deleted", int32(200), (*string)(nil)}, []any{second.RunID, second.Status, *second.HTTPStatus, second.Error})
	require.Equal(t, time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC), *f.Deletion.CompletedAt)
	require.Equal(t, time.Date(2025, 3, 5, 0, 0, 0, 0, time.UTC), f.Deletion.RequestedAt)
	require.Equal(t, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), f.Deletion.ExpiredAt)
	require.Equal(t, "30 days", f.Deletion.MaxAge)
	require.EqualValues(t, 1, *f.Deletion.PolicyID)
	require.Nil(t, f.Deletion.PolicyCharacterID, "the default policy")
	require.InDelta(t, 3*day+22*hour, *f.Deletion.LagSeconds, 0.001)
	require.NotNil(t, first.SealSeq)
	require.NotNil(t, second.SealSeq)
	require.Len(t, *second.SealHash, 64)
	require.False(t, f.InSource, "deleted, and gone from the source")
}

func TestSessionFailedAndWaiting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := one(t, b, "a-f2")
	require.Equal(t, report.StateWaiting, f.State)
	require.Equal(t, "expired", f.ReasonCode)
	require.Equal(t, "expired at 2025-02-14 00:00:00Z under default policy 1 and not deleted yet: the next run sends it; "+
		"2 attempt(s) recorded, the last by run 12 failed: HTTP 500: oops again", f.Reason)
	require.Len(t, f.Attempts, 2)
	require.Nil(t, f.Deletion)
	require.True(t, f.InSource)
	require.Equal(t, time.Date(2025, 2, 14, 0, 0, 0, 0, time.UTC), *f.ExpiresAt)
}

func TestSessionHeld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := one(t, b, "a-held")
	require.Equal(t, []string{report.StateNotDue, "held"}, []string{f.State, f.ReasonCode})
	require.Equal(t, "never selected: held by hold 1 on this session (reason: user asked to keep it; placed by support at 2025-01-01 09:00:00Z)", f.Reason)
	require.Equal(t, report.Hold{ID: 1, Reason: "user asked to keep it", CreatedBy: "support",
		CreatedAt: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}, *f.Hold)
	require.Empty(t, f.Attempts)

	f = one(t, b, "g-1")
	require.Equal(t, "held", f.ReasonCode)
	require.Contains(t, f.Reason, "held by hold 2 on every session of the character (reason: litigation 42; placed by legal")
	require.True(t, f.Hold.WholeCharacter)
	require.EqualValues(t, 2, *f.Policy.HeldBy)
}

func TestSessionNeverSelected(t *testing.T) {
	t.Parallel()
	b := setup(t)

	f := one(t, b, "a-new")
	require.Equal(t, []string{report.StateNotDue, "not_expired"}, []string{f.State, f.ReasonCode})
	require.Equal(t, f.LastActiveAt.AddDate(0, 0, 30), *f.ExpiresAt)
	require.Contains(t, f.Reason, "never selected: not yet expired: last active ")
	require.Contains(t, f.Reason, "max_age 30 days under default policy 1; it expires at "+f.ExpiresAt.Format("2006-01-02 15:04:05Z"))

	f = one(t, b, "o-1")
	require.Equal(t, "disabled", f.ReasonCode)
	require.Equal(t, `never selected: character "off"'s own policy 3 is disabled`, f.Reason)

	f = one(t, b, " ")
	require.Equal(t, "malformed", f.ReasonCode)

	ev := evidence(t, b, report.SessionOptions{SessionID: "no-such-session"})
	require.Equal(t, []report.Finding{{State: report.StateNotFound, ReasonCode: "not_in_source", Attempts: []report.Attempt{},
		Reason: `never selected: no attempt is recorded and retention.sessions has no session "no-such-session"`}}, ev.Findings)

	ev = evidence(t, b, report.SessionOptions{SessionID: "no-such-session", Character: "alpha"})
	require.Len(t, ev.Findings, 1)
	require.Equal(t, []string{"alpha", report.StateNotFound, "never selected: the source has no such session"},
		[]string{ev.Findings[0].CharacterID, ev.Findings[0].State, ev.Findings[0].Reason})

	// Attempted once, long ago, and no longer in the source.
	f = one(t, b, "a-f3")
	require.Equal(t, report.StateNotFound, f.State)
	require.Equal(t, "not deleted: the source has no such session; 1 attempt(s) recorded, the last by run 13 failed: HTTP 400: rejected", f.Reason)

	// In flight.
	f = one(t, b, "a-p1")
	require.Equal(t, []string{report.StatePending, "sent by run 14, still in progress: no answer recorded yet"}, []string{f.State, f.Reason})

	// No policy at all once the default is disabled.
	b.exec(t, `UPDATE retention.policies SET enabled = false WHERE id = 1`)
	f = one(t, b, "a-out1")
	require.Equal(t, "no_policy", f.ReasonCode)
	require.Equal(t, `never selected: no policy applies to character "alpha" (no own policy, no enabled default)`, f.Reason)
	require.Nil(t, f.ExpiresAt)
}

func TestSessionUnderSeveralCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.sessions VALUES ('beta', 'a-f2', now() - interval '1 day')`)
	ev := evidence(t, b, report.SessionOptions{SessionID: "a-f2"})
	require.Len(t, ev.Findings, 2)
	require.Equal(t, []string{"alpha", report.StateWaiting}, []string{ev.Findings[0].CharacterID, ev.Findings[0].State})
	require.Equal(t, []string{"beta", "not_expired"}, []string{ev.Findings[1].CharacterID, ev.Findings[1].ReasonCode})

	ev = evidence(t, b, report.SessionOptions{SessionID: "a-f2", Character: "beta"})
	require.Len(t, ev.Findings, 1)
	require.Equal(t, "beta", ev.Findings[0].CharacterID)
}

func TestSessionInAViewWithAnUndatedRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `
		CREATE SCHEMA app;
		CREATE VIEW app.src AS SELECT * FROM (VALUES
			('alpha', 'x-undated', now() - interval '60 days'), ('alpha', 'x-undated', NULL::timestamptz)) v(character_id, session_id, last_active_at)`)
	ev := evidence(t, b, report.SessionOptions{SessionID: "x-undated", Source: pgx.Identifier{"app", "src"}})
	require.Len(t, ev.Findings, 1)
	require.Equal(t, "undated", ev.Findings[0].ReasonCode)
	require.Equal(t, "app.src", ev.Source)
}

// A session whose ID holds a C1 control character (U+0085 NEXT LINE) is skipped as malformed
// by every run; the evidence and the report say so too, and never count it as waiting.
func TestSessionWithAC1ControlCharacterIsMalformed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := build(t, b, report.Options{})
	b.exec(t, `INSERT INTO retention.sessions VALUES ('alpha', E'nel\u0085', now() - interval '60 days')`)

	f := one(t, b, "nel\u0085")
	require.Equal(t, []string{report.StateNotDue, "malformed"}, []string{f.State, f.ReasonCode})

	after := build(t, b, report.Options{})
	require.Equal(t, before.Total.Outstanding, after.Total.Outstanding)
	require.Equal(t, before.Total.Overdue, after.Total.Overdue)
}

// A held character whose own policy is disabled: the evidence names both.
func TestSessionHeldAndDisabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.holds (id, character_id, reason) OVERRIDING SYSTEM VALUE VALUES (9, 'off', 'case 9')`)
	f := one(t, b, "o-1")
	require.Equal(t, "disabled", f.ReasonCode)
	require.Equal(t, "disabled", f.Policy.Decision)
	require.EqualValues(t, 3, *f.Policy.PolicyID)
	require.NotNil(t, f.Policy.HeldBy)
	require.EqualValues(t, 9, *f.Policy.HeldBy)
	require.EqualValues(t, 9, f.Hold.ID)
}
