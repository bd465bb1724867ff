package job_test

import (
	"context"
	"net/http"
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
