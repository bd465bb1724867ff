package job_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// fileErasure inserts an erasure request with plain SQL, as an operator would, and returns its id.
func (b *bundle) fileErasure(t *testing.T, character string, session any, reason string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`INSERT INTO retention.erasure_requests (character_id, session_id, reason) VALUES ($1, $2, $3) RETURNING id`,
		character, session, reason).Scan(&id))
	return id
}

// deletes returns the delete requests the fake received (a character's request also lists).
func (b *bundle) deletes() []convaitest.Request {
	var out []convaitest.Request
	for _, r := range b.fake.Requests() {
		if r.Endpoint == "delete" {
			out = append(out, r)
		}
	}
	return out
}

// erasureState returns a request's state and blocking holds from retention.erasure_status.
func (b *bundle) erasureState(t *testing.T, id int64) (state string, blockedBy []int64) {
	t.Helper()
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT state, coalesce(blocked_by, '{}') FROM retention.erasure_status WHERE id = $1`, id).Scan(&state, &blockedBy))
	return state, blockedBy
}

func TestErasureRequests(t *testing.T) {
	t.Parallel()

	t.Run("sent first, whatever their age and the policies", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		// "a" expires under the default; "c" has a disabled policy and fresh sessions; "d" has
		// no policy at all (no default would reach it either: it is disabled below).
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES ('c', '30 days', false)`)
		b.seed(t, "a", 4, days(40))
		b.seed(t, "c", 3, days(1))
		b.seed(t, "d", 2, days(0.5))
		one := b.fileErasure(t, "c", "c-s0001", "ticket 1: user asked to be forgotten")
		all := b.fileErasure(t, "d", nil, "ticket 2: every session of d")

		cfg := fastConfig()
		cfg.Concurrency = 1 // one request at a time, so the order is the run's
		sum, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)

		reqs := b.deletes()
		require.Len(t, reqs, 3)
		require.Equal(t, []string{"c-s0001"}, reqs[0].SessionIDs, "the first request is the oldest erasure request's")
		require.Equal(t, "d", reqs[1].CharID)
		require.ElementsMatch(t, []string{"d-s0000", "d-s0001"}, reqs[1].SessionIDs)
		require.Equal(t, "a", reqs[2].CharID, "the policies' selection comes after")

		require.Equal(t, []string{"a/a-s0000", "a/a-s0001", "a/a-s0002", "a/a-s0003", "c/c-s0001", "d/d-s0000", "d/d-s0001"},
			b.recordedDeleted(t))
		require.Equal(t, b.fakeDeleted(), b.recordedDeleted(t))
		require.Equal(t, []string{"c/c-s0001/" + itoa(one), "d/d-s0000/" + itoa(all), "d/d-s0001/" + itoa(all)},
			b.strings(t, `SELECT character_id || '/' || session_id || '/' || erasure_request_id FROM retention.deletions
			              WHERE erasure_request_id IS NOT NULL`))
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE character_id = 'a' AND erasure_request_id IS NOT NULL`))

		require.NotNil(t, sum.Erasure)
		require.Equal(t, job.ErasureSummary{Open: 2, Sessions: 3, Deleted: 3, Completed: []int64{one, all}}, *sum.Erasure)
		require.Zero(t, sum.Erasure.Left)
		require.EqualValues(t, 7, sum.Selected)
		require.EqualValues(t, 7, sum.Deleted)
		for _, id := range []int64{one, all} {
			state, _ := b.erasureState(t, id)
			require.Equal(t, "completed", state)
		}
		require.Equal(t, 2, b.count(t, `SELECT sessions_completed FROM retention.erasure_status WHERE id = $1`, all))

		// A later run has nothing left to do for them.
		sum, err = b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.ErasureSummary{}, *sum.Erasure)
		require.Len(t, b.deletes(), 3)
	})

	t.Run("a session the source does not know is sent all the same", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		id := b.fileErasure(t, "c", "never-stored", "the app did not keep it")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/never-stored"}, b.requested())
		require.Equal(t, []string{"c/never-stored"}, b.recordedDeleted(t))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		                                 WHERE session_id = 'never-stored' AND last_active_at IS NULL AND max_age IS NULL`))
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
	})

	t.Run("an active hold wins and blocks the request until released", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 3, days(1))
		var hold int64
		require.NoError(t, b.pool.QueryRow(context.Background(),
			`INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c', 'c-s0002', 'litigation') RETURNING id`).Scan(&hold))
		one := b.fileErasure(t, "c", "c-s0002", "asked")
		all := b.fileErasure(t, "c", nil, "asked for everything")

		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001"}, b.requested(), "the held session is never sent")
		require.Equal(t, []int64{one, all}, sum.Erasure.Blocked)
		require.Empty(t, sum.Erasure.Completed)
		require.Equal(t, 2, sum.Erasure.Left)
		require.Zero(t, sum.Erasure.Overdue)
		require.EqualValues(t, 1, sum.Erasure.Held)
		for _, id := range []int64{one, all} {
			state, by := b.erasureState(t, id)
			require.Equal(t, "blocked", state)
			require.Equal(t, []int64{hold}, by)
		}

		b.exec(t, `UPDATE retention.holds SET released_at = now() WHERE id = $1`, hold)
		sum, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "c/c-s0002"}, b.requested())
		require.Equal(t, []int64{one, all}, sum.Erasure.Completed)
		for _, id := range []int64{one, all} {
			state, by := b.erasureState(t, id)
			require.Equal(t, "completed", state)
			require.Empty(t, by)
		}
	})

	t.Run("a blocked request past its due time is overdue", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 1, days(1))
		b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('c', 'litigation')`)
		var id int64
		require.NoError(t, b.pool.QueryRow(context.Background(), `INSERT INTO retention.erasure_requests
			(character_id, reason, requested_at) VALUES ('c', 'asked by letter', now() - interval '40 days') RETURNING id`).Scan(&id))
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Empty(t, b.deletes())
		require.Equal(t, 1, sum.Erasure.Overdue)
		require.Equal(t, []int64{id}, sum.Erasure.Blocked)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.erasure_status WHERE id = $1 AND overdue AND state = 'blocked'`, id))
	})

	t.Run("a failed deletion leaves the request open for the next run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 2, days(1))
		id := b.fileErasure(t, "c", nil, "asked")
		b.fake.SetRejectIDs("c-s0001")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusPartial, sum.Status)
		require.Equal(t, []string{"c/c-s0000"}, b.recordedDeleted(t))
		require.Empty(t, sum.Erasure.Completed)
		require.EqualValues(t, 1, sum.Erasure.Failed)
		state, _ := b.erasureState(t, id)
		require.Equal(t, "open", state)

		b.fake.SetRejectIDs()
		sum, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001"}, b.recordedDeleted(t))
	})

	t.Run("two requests sharing a session that fails both stay open", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 3, days(1))
		one := b.fileErasure(t, "c", "c-s0001", "asked")
		all := b.fileErasure(t, "c", nil, "asked for all")
		b.fake.SetRejectIDs("c-s0001")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Empty(t, sum.Erasure.Completed, "c-s0001 failed: neither request is done")
		require.Equal(t, []string{"c/c-s0000", "c/c-s0002"}, b.recordedDeleted(t))
		for _, id := range []int64{one, all} {
			state, _ := b.erasureState(t, id)
			require.Equal(t, "open", state)
		}
		b.fake.SetRejectIDs()
		sum, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{one, all}, sum.Erasure.Completed)
	})

	t.Run("a hold on a session the source does not have blocks a character's request", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 1, days(1))
		b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c', 'gone-already', 'kept')`)
		id := b.fileErasure(t, "c", nil, "asked")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000"}, b.requested(), "what no hold names is sent")
		require.Equal(t, []int64{id}, sum.Erasure.Blocked, "the run reports what the database says")
		state, _ := b.erasureState(t, id)
		require.Equal(t, "blocked", state)
	})

	t.Run("a malformed session of the source keeps a character's request open", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 1, days(1))
		b.exec(t, `INSERT INTO retention.sessions VALUES ('c', E'bad\x01id', now())`)
		id := b.fileErasure(t, "c", nil, "asked")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000"}, b.requested())
		require.Empty(t, sum.Erasure.Completed)
		require.EqualValues(t, 1, sum.SkippedByReason[string(policy.SkipMalformed)])
		state, _ := b.erasureState(t, id)
		require.Equal(t, "open", state)
	})

	t.Run("a session both requested and expired is sent once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.seed(t, "c", 3, days(40))
		b.fileErasure(t, "c", "c-s0001", "asked")
		b.fileErasure(t, "c", nil, "asked again, for all")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "c/c-s0002"}, b.requested())
		require.EqualValues(t, 3, sum.Selected)
		require.Len(t, sum.Erasure.Completed, 2)
	})

	t.Run("a session deleted before the request completes it without a request", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.seed(t, "c", 1, days(40))
		_, err := b.run(t, fastConfig())
		require.NoError(t, err)
		id := b.fileErasure(t, "c", "c-s0000", "asked after the policy had deleted it")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Len(t, b.deletes(), 1)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
	})

	t.Run("the safety cap never stops them", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.seed(t, "old", 10, days(40))
		b.seed(t, "c", 2, days(1))
		id := b.fileErasure(t, "c", nil, "asked")
		b.fileErasure(t, "old", "old-s0003", "asked, and expired too")
		cfg := fastConfig()
		cfg.AbortAbove = 5
		sum, err := b.run(t, cfg)
		var abort *job.AbortError
		require.ErrorAs(t, err, &abort)
		require.Equal(t, abort.Error(), err.Error(), "the cap's error alone: the run was written")
		require.Equal(t, job.StatusAborted, sum.Status)
		require.EqualValues(t, 9, abort.Cap.WouldSend, "the requested session is not the policies' to count")
		require.EqualValues(t, 3, abort.Cap.ErasureSessions)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "old/old-s0003"}, b.requested(),
			"the aborted run sends the erasure requests' sessions and nothing the policies selected")
		require.Contains(t, sum.Erasure.Completed, id)
		require.Equal(t, "aborted", b.runRow(t, sum.RunID).status)
	})

	t.Run("each shard sends its own characters' requests", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		var chars [2]string
		for i := 0; chars[0] == "" || chars[1] == ""; i++ {
			c := "c" + strconv.Itoa(i)
			if chars[policy.Shard(c, 2)] == "" {
				chars[policy.Shard(c, 2)] = c
			}
		}
		ids := [2]int64{b.fileErasure(t, chars[0], "s", "asked"), b.fileErasure(t, chars[1], "s", "asked")}
		for shard := range 2 {
			cfg := fastConfig()
			cfg.Shard = job.Shard{Index: shard, Count: 2}
			sum, err := b.run(t, cfg)
			require.NoError(t, err)
			require.Equal(t, 1, sum.Erasure.Open, "shard %d", shard)
			require.Equal(t, []int64{ids[shard]}, sum.Erasure.Completed, "shard %d", shard)
			require.Equal(t, chars[shard], b.deletes()[shard].CharID)
		}
		require.Len(t, b.deletes(), 2)
	})

	t.Run("an aborted run still completes a request with nothing left to send", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.seed(t, "old", 1, days(40))
		_, err := b.run(t, fastConfig())
		require.NoError(t, err)
		id := b.fileErasure(t, "old", "old-s0000", "asked after the policy deleted it")
		b.seed(t, "more", 5, days(40))
		cfg := fastConfig()
		cfg.AbortAbove = 1
		sum, err := b.run(t, cfg)
		var abort *job.AbortError
		require.ErrorAs(t, err, &abort)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
		require.Len(t, b.deletes(), 1, "only the first run's")
	})

	t.Run("a source row dated in the future does not stop the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.sessions VALUES ('c', 'clock-skew', now() + interval '1 day')`)
		id := b.fileErasure(t, "c", nil, "asked")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
		require.Equal(t, []string{"c/clock-skew"}, b.recordedDeleted(t))
	})

	t.Run("a deletion a verification refutes is sent again under its request", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 2, days(1))
		id := b.fileErasure(t, "c", nil, "asked")
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)

		// Convai still has c-s0001: the verification refutes its deletion.
		b.fake.AddSession("c", "c-s0001", time.Now())
		vsum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.EqualValues(t, 1, vsum.Present)

		sum, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.Zero(t, sum.Erasure.Open, "the request stays complete")
		require.EqualValues(t, 1, sum.Erasure.Deleted, "c-s0001 sent again under it")
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "c/c-s0001"}, b.requested())
		require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.deletions
			WHERE session_id = 'c-s0001' AND status = 'deleted' AND erasure_request_id = $1`, id))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.erasure_completions`))
		require.Equal(t, "completed", func() string { s, _ := b.erasureState(t, id); return s }())

		// And once deleted again, nothing is left to send.
		_, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.Len(t, b.requested(), 3)
	})

	t.Run("a character's request also sends what Convai has and the app never stored", func(t *testing.T) {
		t.Parallel()
		var listFails atomic.Bool
		listFails.Store(true)
		b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/chatHistory/list") && listFails.Load() {
					http.Error(w, "list is down", http.StatusServiceUnavailable)
					return
				}
				fake.ServeHTTP(w, r)
			})
		}})
		b.seed(t, "c", 2, days(1))
		b.fake.AddSession("c", "never-stored-1", time.Now())
		b.fake.AddSession("c", "never-stored-2")
		b.fake.AddSession("other", "not-asked", time.Now())
		id := b.fileErasure(t, "c", nil, "asked for everything")

		// The list cannot be read: what the source has is sent, and the request stays open.
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001"}, b.requested())
		require.Empty(t, sum.Erasure.Completed)
		state, _ := b.erasureState(t, id)
		require.Equal(t, "open", state)

		// It can: the sessions the app never stored are sent too, and the request completes.
		listFails.Store(false)
		sum, err = b.run(t, fastConfig())
		require.NoError(t, err)
		require.EqualValues(t, 2, sum.Erasure.Listed)
		require.Equal(t, []int64{id}, sum.Erasure.Completed)
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "c/never-stored-1", "c/never-stored-2"}, b.requested())
		require.Equal(t, []string{"c/c-s0000", "c/c-s0001", "c/never-stored-1", "c/never-stored-2"}, b.recordedDeleted(t))
		require.False(t, b.fake.HasSession("c", "never-stored-1"))
		require.True(t, b.fake.HasSession("other", "not-asked"))
	})

	t.Run("a dry-run shows them and sends nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.seed(t, "c", 2, days(1))
		b.fileErasure(t, "c", nil, "asked")
		b.fileErasure(t, "e", "unknown", "asked")
		r, err := job.New(b.store, nil, fastConfig())
		require.NoError(t, err)
		sum, err := r.DryRun(context.Background(), "retention.sessions", true)
		require.NoError(t, err)
		require.Equal(t, &job.ErasureSummary{Open: 2, Sessions: 3, Left: 2}, sum.Erasure)
		require.EqualValues(t, 3, sum.Selected)
		require.Empty(t, b.deletes())
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.claims`))
	})
}

func TestErasureRequestsRefuseBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	for name, sql := range map[string]string{
		"blank reason":        `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c', '  ')`,
		"blank character":     `INSERT INTO retention.erasure_requests (character_id, reason) VALUES (' ', 'r')`,
		"control character":   `INSERT INTO retention.erasure_requests (character_id, session_id, reason) VALUES ('c', E's\x01', 'r')`,
		"overlong session":    `INSERT INTO retention.erasure_requests (character_id, session_id, reason) VALUES ('c', repeat('x', 257), 'r')`,
		"due before asked":    `INSERT INTO retention.erasure_requests (character_id, reason, due_at) VALUES ('c', 'r', now() - interval '1 day')`,
		"asked in the future": `INSERT INTO retention.erasure_requests (character_id, reason, requested_at) VALUES ('c', 'r', now() + interval '1 day')`,
		"blank requester":     `INSERT INTO retention.erasure_requests (character_id, reason, requested_by) VALUES ('c', 'r', '')`,
	} {
		_, err := b.pool.Exec(ctx, sql)
		require.Error(t, err, name)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.erasure_requests`))

	id := b.fileErasure(t, "c", "s", "asked")
	var due, asked, filedAt string
	var filedBy string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT (due_at - requested_at)::text, requested_by, filed_by::text, (filed_at <= clock_timestamp())::text
		FROM retention.erasure_requests WHERE id = $1`, id).Scan(&due, &asked, &filedBy, &filedAt))
	require.Equal(t, "30 days", due)
	require.Equal(t, filedBy, asked, "requested_by defaults to the database user")
	require.Equal(t, "true", filedAt)

	_, err := b.pool.Exec(ctx, `INSERT INTO retention.erasure_requests (character_id, reason, filed_by, filed_at)
		VALUES ('c', 'r', 'someone-else', '2001-01-01')`)
	require.NoError(t, err)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.erasure_requests WHERE filed_by = 'someone-else' OR filed_at < '2020-01-01'`),
		"filed_by and filed_at are the database's own")

	for _, sql := range []string{
		`UPDATE retention.erasure_requests SET due_at = due_at + interval '1 year'`,
		`DELETE FROM retention.erasure_requests`,
		`TRUNCATE retention.erasure_requests CASCADE`,
	} {
		_, err := b.pool.Exec(ctx, sql)
		require.Error(t, err, sql)
	}
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.erasure_requests`))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
