package job_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// heavy reports whether the long variants of the fault tests run: RETENTION_HEAVY_TESTS=1, and
// not -short. The default variants check the same properties on less data.
func heavy() bool { return os.Getenv("RETENTION_HEAVY_TESTS") == "1" && !testing.Short() }

// chunkKey names the request of one chunk: its character and IDs. A chunk is sent again with the
// same IDs until it is confirmed (nothing here splits or holds one).
func chunkKey(r convaitest.Request) string {
	return r.CharID + "\x00" + strings.Join(r.SessionIDs, "\x00")
}

// waitIdle waits until the fake has logged every request it began: a hung request is logged
// once the server notices that the client went away.
func waitIdle(t *testing.T, fake *convaitest.Fake) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for fake.Stats().InFlight > 0 {
		require.True(t, time.Now().Before(deadline), "the fake still has requests in flight")
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRemoteFaults runs against an API that answers 25% of requests with a 5xx, 10% with 429 and
// a Retry-After, hangs 5% past the request timeout, drops 5% of connections and deletes 5% but
// loses the answer. Every eligible session is deleted, nothing else is sent, every row recorded
// deleted was confirmed by the API, and every Retry-After is waited for.
func TestRemoteFaults(t *testing.T) {
	t.Parallel()
	seeds, chars, perChar := []int64{5}, 4, 12
	if heavy() {
		seeds, chars, perChar = []int64{1, 2, 3, 4, 5}, 10, 40
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			testRemoteFaults(t, seed, chars, perChar)
		})
	}
}

func testRemoteFaults(t *testing.T, seed int64, chars, perChar int) {
	const retryAfter = time.Second // the fake's smallest
	b := setup(t, setupOpts{fake: convaitest.Options{
		FailRate: 0.25, RateLimitRate: 0.10, RetryAfter: retryAfter, HangRate: 0.05, DropRate: 0.05,
		LostAnswerRate: 0.05, Seed: seed,
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES
		(NULL, '30 days', true), ('never', '1 day', false)`)
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('held', NULL, 'legal hold')`)
	var eligible []string
	for c := range chars {
		char := fmt.Sprintf("plain-%02d", c)
		b.seed(t, char, perChar, days(40))
		for i := range perChar {
			eligible = append(eligible, fmt.Sprintf("%s/%s-s%04d", char, char, i))
		}
	}
	sort.Strings(eligible)
	b.seed(t, "fresh", 5, days(2))   // not expired
	b.seed(t, "never", 5, days(400)) // its own policy is disabled
	b.seed(t, "held", 5, days(400))  // held

	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency, cfg.MaxAttempts = 2, 8, 40
	cfg.RequestTimeout = 200 * time.Millisecond // a hung request gives up quickly
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	waitIdle(t, b.fake)

	reqs := b.fake.Requests()
	st := b.fake.Stats()
	t.Logf("seed %d: %d requests, outcomes %v", seed, len(reqs), st.Outcomes)
	for _, o := range []convaitest.Outcome{convaitest.OutcomeFailed, convaitest.OutcomeRateLimited,
		convaitest.OutcomeHung, convaitest.OutcomeDropped, convaitest.OutcomeLostAnswer} {
		require.Positive(t, st.Outcomes[o], "the fault %s happened", o)
	}

	// Every eligible session is deleted and recorded deleted, once; nothing else was sent.
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.EqualValues(t, len(eligible), sum.Deleted)
	require.Equal(t, eligible, b.recordedDeleted(t), "each eligible session recorded deleted exactly once")
	require.Equal(t, eligible, b.fakeDeleted())
	require.True(t, subsetOf(b.requested(), eligible), "nothing fresh, disabled or held was sent")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status <> 'deleted'`))

	// A row is recorded deleted only after a confirmation of a request that carried it, and its
	// attempts are the requests the API saw for its chunk.
	confirmed := map[string]bool{}
	perChunk := map[string]int{}
	chunkOf := map[string]string{}
	for _, r := range reqs {
		perChunk[chunkKey(r)]++
		for _, id := range r.SessionIDs {
			chunkOf[r.CharID+"/"+id] = chunkKey(r)
			if r.Outcome == convaitest.OutcomeDeleted {
				confirmed[r.CharID+"/"+id] = true
			}
		}
	}
	rows, err := b.pool.Query(context.Background(), `
		SELECT character_id || '/' || session_id, attempts, coalesce(http_status, 0)
		FROM retention.deletions WHERE status = 'deleted'`)
	require.NoError(t, err)
	for rows.Next() {
		var key string
		var attempts, status int
		require.NoError(t, rows.Scan(&key, &attempts, &status))
		require.True(t, confirmed[key], "%s is recorded deleted without a confirmed request", key)
		require.Equal(t, http.StatusOK, status, key)
		require.Equal(t, perChunk[chunkOf[key]], attempts, "%s: attempts recorded = requests the API saw", key)
	}
	require.NoError(t, rows.Err())

	// Every Retry-After (429, and the fake's 503) was waited for before the same chunk was sent
	// again. Request times are arrivals at the fake.
	honoured := 0
	last := map[string]convaitest.Request{}
	for _, r := range reqs {
		k := chunkKey(r)
		if prev, ok := last[k]; ok && (prev.Status == http.StatusTooManyRequests || prev.Status == http.StatusServiceUnavailable) {
			require.GreaterOrEqual(t, r.Time.Sub(prev.Time), retryAfter,
				"the retry of %q came %v after a %d with Retry-After %v", r.CharID, r.Time.Sub(prev.Time), prev.Status, retryAfter)
			honoured++
		}
		last[k] = r
	}
	require.Positive(t, honoured, "some retry followed a Retry-After")
}

func subsetOf(sub, set []string) bool {
	in := make(map[string]bool, len(set))
	for _, s := range set {
		in[s] = true
	}
	for _, s := range sub {
		if !in[s] {
			return false
		}
	}
	return true
}

// flakyHolds is a store whose hold check fails with a lost connection while fail is positive, as
// it does while the database restarts.
type flakyHolds struct {
	*source.Store
	fail  atomic.Int32
	calls atomic.Int32
}

func (s *flakyHolds) StartRun(ctx context.Context, start job.RunStart) (job.RunStore, job.RunInfo, error) {
	rs, info, err := s.Store.StartRun(ctx, start)
	if err != nil {
		return nil, info, err
	}
	return &flakyRun{RunStore: rs, s: s}, info, nil
}

type flakyRun struct {
	job.RunStore
	s *flakyHolds
}

func (r *flakyRun) Held(ctx context.Context, characterID string, ids []string) ([]string, error) {
	r.s.calls.Add(1)
	if r.s.fail.Add(-1) >= 0 {
		return nil, fmt.Errorf("check holds: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01",
			Message: "terminating connection due to administrator command"})
	}
	return r.RunStore.Held(ctx, characterID, ids)
}

// TestHoldCheckFailsDuringRetries: the hold check before a retry cannot reach the database. The
// session is not sent again without it and is not recorded deleted; the recorded error says
// what stopped the retries.
func TestHoldCheckFailsDuringRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				http.Error(w, `{"ERROR": "Internal server error."}`, http.StatusInternalServerError)
				return
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 2, days(2))
	store := &flakyHolds{Store: b.store}
	store.fail.Store(1)

	r, err := job.New(store, b.send, fastConfig())
	require.NoError(t, err)
	sum, err := r.Run(context.Background(), job.RunStart{Source: "test", Host: "test"})
	require.NoError(t, err)
	require.EqualValues(t, 1, store.calls.Load(), "the hold check ran before the retry")
	require.EqualValues(t, 1, calls.Load(), "nothing was sent while the holds could not be checked")
	require.Empty(t, b.fake.Deleted())
	require.Zero(t, sum.Deleted)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status <> 'failed'`))
	// The chunk stopped because the hold check failed, not because the API never confirmed.
	require.Equal(t, []string{"check holds"}, compactErrors(b.strings(t,
		`SELECT CASE WHEN error LIKE '%check holds%' THEN 'check holds' ELSE error END FROM retention.deletions`)),
		"the recorded error names the failed hold check")
}

func compactErrors(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// TestLockLostMidRun: the connection holding a run's lock dies (a database restart or failover
// ends every session), and another run starts and takes the lock. From then on the first run
// must claim nothing: two runs sending at once would each think they own the work.
func TestLockLostMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 40 * time.Millisecond}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 60, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 2, 1 // LockCheckInterval stays at its default, as in the binary

	first, err := job.New(b.store, b.send, cfg)
	require.NoError(t, err)
	type result struct {
		sum *job.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := first.Run(context.Background(), job.RunStart{Source: "test", Host: "first"})
		done <- result{sum, err}
	}()
	deadline := time.Now().Add(time.Minute)
	for b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`) < 4 {
		require.True(t, time.Now().Before(deadline), "the first run records nothing")
		time.Sleep(5 * time.Millisecond)
	}
	// End the lock's session, as a restart does, and wait until the server has let the lock go.
	const runLocks = `FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275269::oid AND objsubid = 2
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) `+runLocks+`) x`))
	for b.count(t, `SELECT count(*) `+runLocks) != 0 {
		require.True(t, time.Now().Before(deadline), "the lock outlives its session")
		time.Sleep(5 * time.Millisecond)
	}

	sum2, err2 := b.run(t, cfg)
	first1 := <-done
	require.NotNil(t, sum2, "the second run started: %v", err2)
	require.NotNil(t, first1.sum, "the first run started: %v", first1.err)
	t.Logf("first run: %v (err %v); second run: %v (err %v)", first1.sum.Status, first1.err, sum2.Status, err2)

	var firstID, secondID int64 = first1.sum.RunID, sum2.RunID
	late := b.count(t, `SELECT count(*) FROM retention.deletions d
		WHERE d.run_id = $1 AND d.requested_at > (SELECT started_at FROM retention.runs WHERE id = $2)`, firstID, secondID)
	require.Zero(t, late, "the first run claimed %d sessions after the second run had started with the lock", late)

	// Whatever happened, a last run leaves every session deleted exactly once.
	_, err = b.run(t, cfg)
	require.NoError(t, err)
	all := b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`)
	require.Equal(t, all, b.recordedDeleted(t))
	require.Equal(t, all, b.fakeDeleted())
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))
}
