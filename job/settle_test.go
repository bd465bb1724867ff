package job_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// forget makes the fake delete sessions before the run, as an earlier delete whose answer was
// lost would have.
func (b *bundle) forget(t *testing.T, character string, ids ...string) {
	t.Helper()
	a := b.send.Delete(context.Background(), character, ids)
	require.Equal(t, job.Confirmed, a.Class, a.Detail)
}

func (b *bundle) listRequests() int {
	n := 0
	for _, r := range b.fake.Requests() {
		if r.Endpoint == convaitest.EndpointList {
			n++
		}
	}
	return n
}

func TestSettleRefusedSessionAbsentFromTheList(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RefuseUnknown: true}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 8, days(2))
	b.seed(t, "d", 2, days(2))
	b.forget(t, "c", "c-s0001", "c-s0006") // one in each half
	before := len(b.fake.Requests())

	cfg := fastConfig()
	cfg.ChunkSize = 8
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.EqualValues(t, 10, sum.Deleted)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE character_id = 'c' AND session_id IN ('c-s0001', 'c-s0006') AND status = 'deleted' AND http_status = 404
		  AND error LIKE 'settled: absent from the list after HTTP 404:%'`))
	require.Equal(t, 8, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted' AND error IS NULL`),
		"confirmed deletions carry no note")
	require.Equal(t, 1, b.listRequests(), "the list is read once per character per run")
	// c: 8 -> 4+4 -> 2+2+2+2 -> 1+1 and 1+1: 1 + 2 + 4 + 4 deletes; d: one delete; one list.
	require.Len(t, b.fake.Requests()[before:], 13)
	// The note is part of the sealed evidence.
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.outcomes o
		WHERE position('settled: absent from the list' in convert_from(retention.claim_content(o.claim_id), 'UTF8')) > 0
		  AND o.session_id IN ('c-s0001', 'c-s0006')`))
}

func TestSettleRefusedSessionStillListedFails(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: []string{"c-s0002"}}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 4, days(2))
	cfg := fastConfig()
	cfg.ChunkSize = 4
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusPartial, sum.Status)
	require.EqualValues(t, 1, sum.Failed)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE session_id = 'c-s0002' AND status = 'failed' AND error LIKE 'rejected with HTTP 400%; present in the list'`))
}

func TestSettleListFaults(t *testing.T) {
	t.Parallel()
	listAnswers := func(code int) func(http.Handler) http.Handler {
		return func(fake http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == convaitest.ListPath {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(code)
					_, _ = w.Write([]byte(`{"ERROR": "no"}`))
					return
				}
				fake.ServeHTTP(w, r)
			})
		}
	}
	t.Run("a list that keeps failing settles nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{RefuseUnknown: true}, handler: listAnswers(http.StatusBadGateway)})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
		b.seed(t, "c", 2, days(2))
		b.forget(t, "c", "c-s0000")
		cfg := fastConfig()
		cfg.MaxAttempts = 3
		sum, err := b.run(t, cfg)
		require.NoError(t, err)
		require.EqualValues(t, 1, sum.Failed)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
			WHERE session_id = 'c-s0000' AND status = 'failed'
			  AND error LIKE 'rejected with HTTP 404%; not settled: list the sessions of c: no complete list after 3 attempts: HTTP 502%'`))
	})
	t.Run("a rejected key while listing stops the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{RefuseUnknown: true}, handler: listAnswers(http.StatusUnauthorized)})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
		b.seed(t, "c", 1, days(2))
		b.seed(t, "e", 300, days(2))
		b.forget(t, "c", "c-s0000")
		cfg := fastConfig()
		cfg.ChunkSize, cfg.Concurrency, cfg.Rate = 1, 1, 0
		sum, err := b.run(t, cfg)
		require.ErrorIs(t, err, job.ErrKeyRejected)
		require.Equal(t, job.StatusFailed, sum.Status)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
			WHERE session_id = 'c-s0000' AND status = 'failed' AND error LIKE '%not settled: the API rejected the key'`))
		require.Positive(t, sum.NotSent, "the run stopped sending")
	})
}

// TestSettleNeedsACredibleList: every delete is refused with 400 and every list is empty. An
// empty list shows none of the character's live sessions, so it is no evidence that a refused
// session is gone: nothing is recorded deleted, each refused session fails saying why, and the
// refusal guard stops the run after RefusalLimit chunks refused at every ID.
func TestSettleNeedsACredibleList(t *testing.T) {
	t.Parallel()
	var lists atomic.Int32
	b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == convaitest.ListPath {
				lists.Add(1)
				_, _ = w.Write([]byte(`[]`))
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"ERROR": "bad request"}`))
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 40, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 4, 1
	sum, err := b.run(t, cfg)
	var refused *job.RefusedError
	require.ErrorAs(t, err, &refused, "three chunks refused at every ID stop the run")
	require.EqualValues(t, 0, sum.Deleted)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`))
	require.Equal(t, 12, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE status = 'failed' AND error LIKE 'rejected with HTTP 400%; not settled: the list of c is empty: an empty list is no evidence of absence'`))
	require.EqualValues(t, 1, lists.Load(), "the list is read once per character per run")
}

// TestSettleListOfDeletedSessionsOnly: the list shows sessions, but only ones the job already
// recorded deleted: it cannot see the character's live sessions, and settles nothing.
func TestSettleListOfDeletedSessionsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: []string{"c-s0003"}}, handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == convaitest.ListPath {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`[{"sessionID": "c-s0000"}, {"sessionID": "c-s0001"}]`))
				return
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 4, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 1, 1
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 3, sum.Deleted)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE session_id = 'c-s0003' AND status = 'failed'
		  AND error LIKE '%not settled: the list of c shows none of the sessions the job knows are live (2 listed)%'`))
}
