package job_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// endUserSessions adds sessions of an end user with a character to the set and to the fake,
// each with one memory drawn from it.
func (b *bundle) endUserSessions(t *testing.T, endUser, character string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%s-%d", character, endUser, i)
		b.fake.AddSession(character, ids[i], time.Now())
		b.fake.AddMemory(character, endUser, convaitest.Memory{ID: "m-" + ids[i], Text: "likes tea", SessionID: ids[i]})
	}
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
		SELECT $1, id, now() - interval '1 day', $2 FROM unnest($3::text[]) id`, character, endUser, ids)
	return ids
}

// fileEndUser files an end user's request with plain SQL, as an operator would.
func (b *bundle) fileEndUser(t *testing.T, endUser string, character any, record bool) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `
		INSERT INTO retention.end_user_requests (end_user_id, character_id, end_user_record, reason)
		VALUES ($1, $2, $3, 'ticket') RETURNING id`, endUser, character, record).Scan(&id))
	return id
}

// endUserState returns the request's state from retention.end_user_erasure_status.
func (b *bundle) endUserState(t *testing.T, id int64) string {
	t.Helper()
	return b.strings(t, `SELECT state FROM retention.end_user_erasure_status WHERE id = $1`, id)[0]
}

// memoryCalls counts the requests the fake received on the memory endpoints.
func (b *bundle) memoryCalls() map[string]int {
	out := map[string]int{}
	for _, r := range b.fake.Requests() {
		switch r.Endpoint {
		case convaitest.EndpointMemoryList, convaitest.EndpointMemoryDelete, convaitest.EndpointMemoryDeleteAll, convaitest.EndpointEndUserDelete:
			out[r.Endpoint]++
		}
	}
	return out
}

func memoryConfig() job.Config {
	c := fastConfig()
	c.MemoryPoll, c.MemoryConfirmWithin = time.Millisecond, 200*time.Millisecond
	return c
}

func TestEndUserErasure(t *testing.T) {
	t.Parallel()

	t.Run("every session of the end user, then their memory with each character, then the record", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		mine := append(b.endUserSessions(t, "u1", "c1", 2), b.endUserSessions(t, "u1", "c2", 1)...)
		others := b.endUserSessions(t, "u2", "c1", 1)
		b.seed(t, "c3", 1, days(1)) // no end user, no policy: left alone
		id := b.fileEndUser(t, "u1", nil, true)

		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.ElementsMatch(t, []string{"c1/" + mine[0], "c1/" + mine[1], "c2/" + mine[2]}, b.recordedDeleted(t))
		require.Empty(t, b.fake.Memories("c1", "u1"))
		require.Empty(t, b.fake.Memories("c2", "u1"))
		require.Len(t, b.fake.Memories("c1", "u2"), 1, "another end user's memory stays")
		require.NotContains(t, b.fake.EndUsers(), "u1")
		require.Contains(t, b.fake.EndUsers(), "u2")
		require.NotContains(t, b.recordedDeleted(t), "c1/"+others[0])

		eu := sum.Erasure.EndUsers
		require.NotNil(t, eu)
		require.Equal(t, 1, eu.Open)
		require.Equal(t, 2, eu.Characters)
		require.Equal(t, 2, eu.Erased)
		require.Equal(t, 1, eu.RecordsErased)
		require.Equal(t, []int64{id}, eu.Completed)
		require.Equal(t, "completed", b.endUserState(t, id))
		require.Equal(t, []string{"c1 erased 2 0", "c2 erased 1 0", "record erased - -"}, b.strings(t, `
			SELECT coalesce(character_id, 'record') || ' ' || status || ' ' || coalesce(listed_before::text, '-') || ' ' ||
			       coalesce(remaining::text, '-')
			FROM retention.memory_erasures WHERE request_id = $1`, id), "the same list saw the memories, then none")
		require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.erasure_status WHERE end_user_request_id = $1 AND state = 'completed'`, id))
		require.Equal(t, 3, b.count(t, `SELECT sessions_deleted FROM retention.end_user_erasure_status WHERE id = $1`, id))

		// The next run has nothing to do for it, and calls no memory endpoint.
		before := b.memoryCalls()
		_, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, before, b.memoryCalls())
	})

	t.Run("one character only", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.endUserSessions(t, "u1", "c1", 1)
		kept := b.endUserSessions(t, "u1", "c2", 1)
		id := b.fileEndUser(t, "u1", "c1", false)
		_, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, "completed", b.endUserState(t, id))
		require.Empty(t, b.fake.Memories("c1", "u1"))
		require.Len(t, b.fake.Memories("c2", "u1"), 1)
		require.NotContains(t, b.recordedDeleted(t), "c2/"+kept[0])
		require.Zero(t, b.memoryCalls()[convaitest.EndpointEndUserDelete])
	})

	t.Run("a delete-all that completes later is polled until the list is empty", func(t *testing.T) {
		t.Parallel()
		// The fake's clock moves a second each time it is read: the delete-all completes after
		// a few lists, whatever the wall clock does.
		var tick atomic.Int64
		start := time.Now()
		b := setup(t, setupOpts{fake: convaitest.Options{MemoryDeleteDelay: 5 * time.Second,
			Now: func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Second) }}})
		b.endUserSessions(t, "u1", "c1", 1)
		id := b.fileEndUser(t, "u1", nil, false)
		cfg := memoryConfig()
		cfg.MemoryConfirmWithin = time.Minute
		_, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, "completed", b.endUserState(t, id))
		require.Greater(t, b.memoryCalls()[convaitest.EndpointMemoryList], 1, "listed again until empty")
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_erasures WHERE request_id = $1 AND status = 'erased' AND attempts > 2`, id))
	})

	t.Run("a delete-all that never completes leaves the request open; the next run checks again", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{StuckDeleteAll: true}})
		mine := b.endUserSessions(t, "u1", "c1", 1)
		id := b.fileEndUser(t, "u1", nil, false)
		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status, "the sessions were deleted")
		require.Equal(t, []string{"c1/" + mine[0]}, b.recordedDeleted(t))
		require.Equal(t, 1, sum.Erasure.EndUsers.Pending)
		require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Left)
		require.Equal(t, "open", b.endUserState(t, id))
		require.Equal(t, []string{"pending 1"}, b.strings(t, `SELECT status || ' ' || remaining FROM retention.memory_erasures WHERE request_id = $1`, id))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.erasure_status WHERE end_user_request_id = $1 AND state = 'completed'`, id),
			"the character's sessions are complete; its memory is not")

		b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = false })
		sum, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Completed)
		require.Equal(t, "completed", b.endUserState(t, id))
	})

	t.Run("a memory that reappears after the delete-all keeps the request open; the next run erases it", func(t *testing.T) {
		t.Parallel()
		// Right after the first delete-all is answered, a new memory appears, as if a session
		// that closed late had been drawn on: the delete-all does not cover it, so the lists
		// keep showing it.
		var once sync.Once
		var fake *convaitest.Fake
		b := setup(t, setupOpts{handler: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				if r.URL.Path == convaitest.MemoryDeleteAllPath {
					once.Do(func() { fake.AddMemory("c1", "u1", convaitest.Memory{ID: "late", Text: "drawn later"}) })
				}
			})
		}})
		fake = b.fake
		b.endUserSessions(t, "u1", "c1", 1)
		id := b.fileEndUser(t, "u1", nil, false)
		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, 1, sum.Erasure.EndUsers.Pending)
		require.Equal(t, "open", b.endUserState(t, id))
		require.Equal(t, []string{"pending 1"}, b.strings(t, `SELECT status || ' ' || remaining FROM retention.memory_erasures WHERE request_id = $1`, id))
		require.Equal(t, []string{"late"}, []string{b.fake.Memories("c1", "u1")[0].ID})

		_, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, "completed", b.endUserState(t, id))
		require.Empty(t, b.fake.Memories("c1", "u1"))
	})

	t.Run("holds win: a hold on one of the end user's sessions blocks that character", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.endUserSessions(t, "u1", "c1", 1)
		held := b.endUserSessions(t, "u1", "c2", 2)
		b.endUserSessions(t, "u2", "c3", 1)
		b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c2', $1, 'litigation')`, held[0])
		b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c3', 'c3-u2-0', 'other user')`)
		id := b.fileEndUser(t, "u1", nil, true)
		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Blocked)
		require.Equal(t, "blocked", b.endUserState(t, id))
		require.Empty(t, b.fake.Memories("c1", "u1"), "the character not held is erased")
		require.Len(t, b.fake.Memories("c2", "u1"), 2, "the held character's memory is left alone")
		require.NotContains(t, b.recordedDeleted(t), "c2/"+held[0])
		require.Contains(t, b.fake.EndUsers(), "u1", "no record deletion while a character is blocked")
		for _, r := range b.fake.Requests() {
			require.False(t, r.CharID == "c2" && r.Endpoint == convaitest.EndpointMemoryDeleteAll, "no delete-all for a held character")
		}
		require.Equal(t, []int64{1}, b.int64s(t, `SELECT unnest(blocked_by) FROM retention.end_user_erasure_status WHERE id = $1`, id))
		// The database refuses to record the held character's memory as erased.
		require.Error(t, b.exec2(`SELECT retention.record_memory_erasure(r.id, 'x', $1, 'c2', 'erased', 1, 200, 0, NULL, now())
			FROM retention.runs r LIMIT 1`, id))
	})

	t.Run("a key that may not touch the character, and an account without memory", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{ForeignCharacters: []string{"c2"}}})
		b.endUserSessions(t, "u1", "c1", 1)
		b.endUserSessions(t, "u1", "c2", 1)
		id := b.fileEndUser(t, "u1", nil, false)
		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, 1, sum.Erasure.EndUsers.Forbidden)
		require.Equal(t, 1, sum.Erasure.EndUsers.Erased)
		require.Equal(t, "open", b.endUserState(t, id))
		require.Equal(t, []string{"c1 erased 200", "c2 forbidden 403"}, b.strings(t, `
			SELECT character_id || ' ' || status || coalesce(' ' || http_status, '') FROM retention.memory_erasures
			WHERE request_id = $1`, id))

		b2 := setup(t, setupOpts{fake: convaitest.Options{NoMemory: true}})
		mine := b2.endUserSessions(t, "u1", "c1", 1)
		id2 := b2.fileEndUser(t, "u1", nil, false)
		sum, err = b2.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status, "a 404 on memory is not a failure of the sessions' deletion")
		require.Equal(t, []string{"c1/" + mine[0]}, b2.recordedDeleted(t))
		require.Equal(t, 1, sum.Erasure.EndUsers.Unavailable)
		require.Equal(t, "open", b2.endUserState(t, id2))
		require.Equal(t, []string{"unavailable this account or API does not offer long-term memory (404): the sessions' deletion is not affected"},
			b2.strings(t, `SELECT status || ' ' || error FROM retention.memory_erasures WHERE request_id = $1`, id2))
	})

	t.Run("429 and 5xx on the memory routes are retried", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{RateLimitRate: 0.5, FailRate: 0.2, Seed: 7,
			RetryAfter: time.Millisecond}})
		b.endUserSessions(t, "u1", "c1", 3)
		id := b.fileEndUser(t, "u1", nil, false)
		cfg := memoryConfig()
		cfg.MaxAttempts = 30
		cfg.MaxRetryAfter = time.Millisecond
		_, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, "completed", b.endUserState(t, id))
		require.Empty(t, b.fake.Memories("c1", "u1"))
	})

	t.Run("off until asked: no memory endpoint is called without an end user's request; a dry-run calls none", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 hour')`)
		b.endUserSessions(t, "u1", "c1", 2)
		b.fileErasure(t, "c1", nil, "a character's request")
		_, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Empty(t, b.memoryCalls())
		require.Len(t, b.fake.Memories("c1", "u1"), 2, "deleting chat history leaves memory")

		b2 := setup(t, setupOpts{})
		b2.endUserSessions(t, "u1", "c1", 1)
		id := b2.fileEndUser(t, "u1", nil, false)
		r, err := job.New(b2.store, b2.send, memoryConfig())
		require.NoError(t, err)
		sum, err := r.DryRun(context.Background(), "test", false)
		require.NoError(t, err)
		require.Equal(t, 1, sum.Erasure.EndUsers.ToErase)
		require.Empty(t, b2.memoryCalls())
		require.Equal(t, "open", b2.endUserState(t, id))
	})
}

// int64s returns the first column of every row.
func (b *bundle) int64s(t *testing.T, sql string, args ...any) []int64 {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// exec2 runs sql and returns its error.
func (b *bundle) exec2(sql string, args ...any) error {
	_, err := b.pool.Exec(context.Background(), sql, args...)
	return err
}

// TestEndUserClaimsOnlyTheirSessions: the database refuses a claim under an end user's request
// that names another end user's session, whoever inserts it.
func TestEndUserClaimsOnlyTheirSessions(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	mine := b.endUserSessions(t, "u1", "c1", 1)
	theirs := b.endUserSessions(t, "u2", "c1", 1)
	id := b.fileEndUser(t, "u1", nil, false)
	child := b.int64s(t, `SELECT id FROM retention.erasure_requests WHERE end_user_request_id = $1`, id)
	require.Len(t, child, 1)
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (900, now(), 'x')`)
	claim := `INSERT INTO retention.claims (run_id, character_id, session_ids, last_active_at, erasure_request_id)
		VALUES (900, 'c1', $1, ARRAY[now()], $2)`
	require.ErrorContains(t, b.exec2(claim, []string{theirs[0]}, child[0]), "for one end user's sessions only")
	require.NoError(t, b.exec2(claim, []string{mine[0]}, child[0]))
}
