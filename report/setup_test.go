package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/report"
)

// bundle is a migrated database holding the world of seed.
type bundle struct {
	db   *pgtest.Database
	pool *pgxpool.Pool
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := pgtest.New(t)
	b := &bundle{db: db, pool: db.Pool}
	b.exec(t, seed)
	return b
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// The period of the seeded outcomes: the first week of March 2025, UTC.
var (
	since = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	until = time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)
)

func build(t *testing.T, b *bundle, o report.Options) *report.Report {
	t.Helper()
	if o.Since.IsZero() {
		o.Since, o.Until = since, until
	}
	r, err := report.Build(context.Background(), b.pool, o)
	require.NoError(t, err)
	return r
}

// seed is a small world whose every figure is worked out by hand in the tests.
//
// Policies: 1 the default, 30 days; 2 beta's own, 7 days; 3 off's own, disabled.
// Holds: 1 on session alpha/a-held; 2 on the whole of gamma.
// Runs: 11 (2025-03-02 00:00, 10 min), 12 (2025-03-05 00:00, 90 s), 13 (2025-02-20, before the
// period), 14 (2025-03-07 12:00, still running).
//
// Outcomes, with the moment each session expired (last_active_at + max_age) and completed:
//
//	alpha a-d1  run 11 deleted  expired 03-01 23:00  completed 03-02 00:00  lag 1h
//	alpha a-d2  run 11 deleted  expired 03-01 22:00  completed 03-02 00:00  lag 2h
//	alpha a-d3  run 11 deleted  expired 03-01 21:00  completed 03-02 00:00  lag 3h
//	alpha a-d4  run 12 deleted  expired 03-04 20:00  completed 03-05 00:00  lag 4h
//	alpha a-f1  run 11 failed                        completed 03-02 00:05
//	alpha a-f1  run 12 deleted  expired 03-01 12:00  completed 03-05 10:00  lag 3d 22h
//	alpha a-f2  run 11 failed   expired 02-14 00:00  completed 03-02 00:06
//	alpha a-f2  run 12 failed                        completed 03-05 00:02
//	alpha a-f3  run 13 failed                        completed 02-20 00:01  (before the period)
//	alpha a-p1  run 14 pending
//	beta  b-d1  run 11 deleted  expired 03-01 23:30  completed 03-02 00:00  lag 30m
//	beta  b-d2  run 12 deleted  expired 03-04 22:30  completed 03-05 00:00  lag 90m
//	beta  b-late run 14 deleted expired 02-27 12:00  completed 03-07 12:30  lag 8d 30m
//	beta  b-f1  run 12 failed   expired 02-08 00:00  completed 03-05 00:03
//
// The source now: alpha a-f2 and b-f1 (as above, long expired), a-out1 (expired 10 days ago),
// a-out2 (3 days ago), a-new (expires in 25 days), a-held (held), a-d1 (deleted), a blank ID;
// beta b-out1 (expired a day ago), b-new (not expired); gamma g-1, g-2 (held); off o-1 (disabled).
const seed = `
	INSERT INTO retention.policies (id, character_id, max_age, enabled) OVERRIDING SYSTEM VALUE VALUES
		(1, NULL, '30 days', true), (2, 'beta', '7 days', true), (3, 'off', '1 day', false);
	INSERT INTO retention.holds (id, character_id, session_id, reason, created_by, created_at) OVERRIDING SYSTEM VALUE VALUES
		(1, 'alpha', 'a-held', 'user asked to keep it', 'support', '2025-01-01 09:00+00'),
		(2, 'gamma', NULL, 'litigation 42', 'legal', '2025-01-02 09:00+00');
	INSERT INTO retention.runs (id, status, started_at, finished_at, cutoff, source, selected, deleted, failed, skipped)
		OVERRIDING SYSTEM VALUE VALUES
		(11, 'partial', '2025-03-02 00:00+00', '2025-03-02 00:10+00', '2025-03-02 00:00+00', 'retention.sessions', 7, 4, 2, 1),
		(12, 'partial', '2025-03-05 00:00+00', '2025-03-05 00:01:30+00', '2025-03-05 00:00+00', 'retention.sessions', 5, 3, 2, 1),
		(13, 'partial', '2025-02-20 00:00+00', '2025-02-20 00:05+00', '2025-02-20 00:00+00', 'retention.sessions', 1, 0, 1, 0);
	INSERT INTO retention.runs (id, status, started_at, cutoff, source) OVERRIDING SYSTEM VALUE VALUES
		(14, 'running', '2025-03-07 12:00+00', '2025-03-07 12:00+00', 'retention.sessions');

	CREATE TEMP TABLE o (character_id text, session_id text, run_id bigint, status text, expired timestamptz,
	                     completed timestamptz, http int, err text);
	INSERT INTO o VALUES
		('alpha', 'a-d1', 11, 'deleted', '2025-03-01 23:00+00', '2025-03-02 00:00+00', 200, NULL),
		('alpha', 'a-d2', 11, 'deleted', '2025-03-01 22:00+00', '2025-03-02 00:00+00', 200, NULL),
		('alpha', 'a-d3', 11, 'deleted', '2025-03-01 21:00+00', '2025-03-02 00:00+00', 200, NULL),
		('alpha', 'a-d4', 12, 'deleted', '2025-03-04 20:00+00', '2025-03-05 00:00+00', 200, NULL),
		('alpha', 'a-f1', 11, 'failed',  '2025-03-01 12:00+00', '2025-03-02 00:05+00', 503, 'HTTP 503: unavailable'),
		('alpha', 'a-f1', 12, 'deleted', '2025-03-01 12:00+00', '2025-03-05 10:00+00', 200, NULL),
		('alpha', 'a-f2', 11, 'failed',  '2025-02-14 00:00+00', '2025-03-02 00:06+00', 500, 'HTTP 500: oops'),
		('alpha', 'a-f2', 12, 'failed',  '2025-02-14 00:00+00', '2025-03-05 00:02+00', 500, 'HTTP 500: oops again'),
		('alpha', 'a-f3', 13, 'failed',  '2025-02-10 00:00+00', '2025-02-20 00:01+00', 400, 'HTTP 400: rejected'),
		('alpha', 'a-p1', 14, 'pending', '2025-03-06 00:00+00', NULL, NULL, NULL),
		('beta',  'b-d1', 11, 'deleted', '2025-03-01 23:30+00', '2025-03-02 00:00+00', 200, NULL),
		('beta',  'b-d2', 12, 'deleted', '2025-03-04 22:30+00', '2025-03-05 00:00+00', 200, NULL),
		('beta',  'b-late', 14, 'deleted', '2025-02-27 12:00+00', '2025-03-07 12:30+00', 200, NULL),
		('beta',  'b-f1', 12, 'failed',  '2025-02-08 00:00+00', '2025-03-05 00:03+00', 503, 'HTTP 503: unavailable');
	-- Rows from before recording v2 (deletions_v1), through the v1 protocol: claimed pending,
	-- then the outcome, so every final row is sealed by the v1 chain.
	INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, policy_id, policy_character_id, max_age, requested_at)
	SELECT o.run_id, o.character_id, o.session_id,
	       ((o.expired AT TIME ZONE 'UTC') - m.max_age) AT TIME ZONE 'UTC',
	       m.id, m.character_id, m.max_age, r.started_at
	FROM o
	JOIN retention.runs r ON r.id = o.run_id
	JOIN retention.policies m ON m.id = CASE WHEN o.character_id = 'beta' THEN 2 ELSE 1 END
	ORDER BY o.completed NULLS LAST;
	UPDATE retention.deletions_v1 d
	SET status = o.status, attempts = 1, http_status = o.http, error = o.err, completed_at = o.completed
	FROM o
	WHERE o.run_id = d.run_id AND o.character_id = d.character_id AND o.session_id = d.session_id AND o.status <> 'pending';

	INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES
		('alpha', 'a-f2', '2025-01-15 00:00+00'),
		('alpha', 'a-out1', now() - interval '40 days'),
		('alpha', 'a-out2', now() - interval '33 days'),
		('alpha', 'a-new', now() - interval '5 days'),
		('alpha', 'a-held', now() - interval '50 days'),
		('alpha', 'a-d1', '2025-01-30 23:00+00'),
		('alpha', ' ', now() - interval '90 days'),
		('beta', 'b-f1', '2025-02-01 00:00+00'),
		('beta', 'b-out1', now() - interval '8 days'),
		('beta', 'b-new', now() - interval '2 days'),
		('gamma', 'g-1', now() - interval '100 days'),
		('gamma', 'g-2', now() - interval '100 days'),
		('off', 'o-1', now() - interval '400 days');
`
