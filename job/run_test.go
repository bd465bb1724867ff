package job_test

import (
	"context"
	"errors"
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

// seedPolicies gives a default of 30 days, an own 7-day policy to "short", an own 365-day
// policy to "long", a disabled own policy to "never", a hold on "held" and on one session.
func seedPolicies(t *testing.T, b *bundle) {
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES
		(NULL, '30 days', true), ('short', '7 days', true), ('long', '365 days', true), ('never', '1 day', false)`)
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES
		('held', NULL, 'litigation'), ('plain', 'plain-s0003', 'user asked to keep it')`)
}

func TestRunDeletesExactlyTheEligible(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	seedPolicies(t, b)
	b.seed(t, "plain", 10, func(i int) float64 { return float64(25 + i) })  // 30+ days: s0005..s0009 expired
	b.seed(t, "short", 10, func(i int) float64 { return float64(3 + i) })   // 7+ days: s0004..s0009
	b.seed(t, "long", 5, func(i int) float64 { return float64(360 + i*2) }) // 365+ days: s0003, s0004
	b.seed(t, "never", 5, days(400))
	b.seed(t, "held", 5, days(400))
	b.seed(t, "nopolicy-but-default", 3, days(31))

	cfg := fastConfig()
	cfg.ChunkSize = 3
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)

	want := []string{
		"long/long-s0003", "long/long-s0004",
		"nopolicy-but-default/nopolicy-but-default-s0000", "nopolicy-but-default/nopolicy-but-default-s0001", "nopolicy-but-default/nopolicy-but-default-s0002",
		"plain/plain-s0005", "plain/plain-s0006", "plain/plain-s0007", "plain/plain-s0008", "plain/plain-s0009",
		"short/short-s0004", "short/short-s0005", "short/short-s0006", "short/short-s0007", "short/short-s0008", "short/short-s0009",
	}
	require.Equal(t, want, b.fakeDeleted())
	require.Equal(t, want, b.recordedDeleted(t))
	require.Equal(t, want, b.requested(), "each session sent once, nothing else sent")
	require.EqualValues(t, len(want), sum.Selected)
	require.EqualValues(t, len(want), sum.Deleted)
	require.Zero(t, sum.Failed)
	require.Zero(t, sum.NotSent)
	require.EqualValues(t, 5, sum.SkippedByReason["held"], "the whole-character hold; plain-s0003 is not yet expired")

	for _, r := range b.fake.Requests() {
		require.LessOrEqual(t, len(r.SessionIDs), 3, "chunk size bound")
		seen := map[string]bool{}
		for _, id := range r.SessionIDs {
			require.False(t, seen[id], "duplicate ID in one request")
			seen[id] = true
			require.Contains(t, id, r.CharID+"-", "one request carries one character")
		}
	}

	// The run row agrees, and every deletion names its policy and max_age.
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE id = $1 AND status = 'succeeded'
		AND deleted = $2 AND failed = 0 AND selected = $2 AND finished_at IS NOT NULL`, sum.RunID, len(want)))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.deletions d JOIN retention.policies p ON p.id = d.policy_id
		WHERE d.character_id = 'long' AND p.character_id = 'long' AND d.max_age = interval '365 days'`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE character_id = 'nopolicy-but-default' AND policy_character_id IS NULL AND max_age = interval '30 days'`))

	// A second run finds nothing left to do.
	sum2, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Zero(t, sum2.Selected)
	require.Len(t, b.requested(), len(want))
}

func TestNoPolicyTouchesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES (NULL, '1 day', false)`)
	b.seed(t, "c", 5, days(1000))
	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Zero(t, sum.Selected)
	require.Empty(t, b.fake.Requests())
}

func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 30 * time.Millisecond}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	for c := range 8 {
		b.seed(t, fmt.Sprintf("c%d", c), 20, days(2))
	}
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 5, 3
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 160, sum.Deleted)
	st := b.fake.Stats()
	require.LessOrEqual(t, st.MaxInFlight, 3)
	require.Greater(t, st.MaxInFlight, 1, "requests did run side by side")
	require.Len(t, b.fake.Requests(), 32)
}

func TestRateLimitSpacesRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 11, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency, cfg.Rate = 1, 4, 50
	_, err := b.run(t, cfg)
	require.NoError(t, err)
	reqs := b.fake.Requests()
	require.Len(t, reqs, 11)
	// 11 requests at 50/s with a burst of one take their tokens 10 intervals of 20ms apart; the
	// requests go out a claim later, and the first claim of a connection is the slowest, so the
	// bound leaves room for it (without a limit the span is a few milliseconds).
	first, last := reqs[0].Time, reqs[0].Time
	for _, r := range reqs {
		if r.Time.Before(first) {
			first = r.Time
		}
		if r.Time.After(last) {
			last = r.Time
		}
	}
	require.GreaterOrEqual(t, last.Sub(first), 150*time.Millisecond)
}

func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{FailRate: 0.5, Seed: 7}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 40, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.MaxAttempts = 4, 20
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.EqualValues(t, 40, sum.Deleted)
	require.Len(t, b.fakeDeleted(), 40)
	require.Greater(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE attempts > 1`), 0)
	require.Greater(t, b.fake.Stats().Outcomes[convaitest.OutcomeFailed], 0)
}

func TestUnconfirmedSuccessIsNeverRecordedDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{UnconfirmedRate: 1}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 6, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.MaxAttempts = 3, 3
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusPartial, sum.Status)
	require.Zero(t, sum.Deleted)
	require.EqualValues(t, 6, sum.Failed)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`))
	require.Equal(t, 6, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE status = 'failed' AND attempts = 3 AND http_status = 200 AND error LIKE 'no confirmation after 3 attempts%'`))
	require.Len(t, b.fake.Requests(), 6, "two chunks, three tries each")
}

func TestKeyRejectedStopsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{APIKey: "some-other-key"}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	for c := range 10 {
		b.seed(t, fmt.Sprintf("c%d", c), 10, days(2))
	}
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 10, 2
	sum, err := b.run(t, cfg)
	require.ErrorIs(t, err, job.ErrKeyRejected)
	require.Equal(t, job.StatusFailed, sum.Status)
	require.LessOrEqual(t, len(b.fake.Requests()), 2, "no request after the first 401 but those already in flight")
	require.Positive(t, sum.NotSent, "chunks never claimed are reported, not lost")
	require.Equal(t, sum.Selected-sum.Failed, sum.NotSent)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status <> 'failed'`))
	require.Positive(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE http_status = 401`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'failed' AND error LIKE '%rejected the key%'`))
}

func TestBisectIsolatesTheBadID(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: []string{"c-s0005"}}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 8, days(2))
	cfg := fastConfig()
	cfg.ChunkSize = 8
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusPartial, sum.Status)
	require.EqualValues(t, 7, sum.Deleted)
	require.EqualValues(t, 1, sum.Failed)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE session_id = 'c-s0005' AND status = 'failed' AND http_status = 400 AND attempts = 4
		  AND error LIKE 'rejected with HTTP 400%; present in the list'`))
	// 8 -> 4+4 -> (2+2) -> (1+1): 1 + 2 + 2 + 2 requests, and one list to settle the refused ID.
	require.Len(t, b.fake.Requests(), 8)
	require.NotContains(t, b.fakeDeleted(), "c/c-s0005")
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 2, days(2))
	cfg := fastConfig()
	start := time.Now()
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.Deleted)
	require.EqualValues(t, 2, calls.Load())
	reqs := b.fake.Requests()
	require.Len(t, reqs, 1)
	// The backoff alone would have waited about a millisecond.
	require.GreaterOrEqual(t, reqs[0].Time.Sub(start), time.Second)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.deletions WHERE attempts = 2 AND status = 'deleted'`))
}

func TestBudgetTakesTheOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "a", 10, func(i int) float64 { return float64(10 + 2*i) }) // even days 10..28
	b.seed(t, "b", 10, func(i int) float64 { return float64(11 + 2*i) }) // odd days 11..29
	cfg := fastConfig()
	cfg.MaxDeletions = 5
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.True(t, sum.BudgetReached)
	require.Equal(t, []string{"a/a-s0008", "a/a-s0009", "b/b-s0007", "b/b-s0008", "b/b-s0009"}, b.fakeDeleted())
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE budget_reached AND status = 'succeeded'`))

	// The next run continues where the budget stopped.
	sum, err = b.run(t, cfg)
	require.NoError(t, err)
	require.True(t, sum.BudgetReached)
	require.Len(t, b.fakeDeleted(), 10)
}

func TestLockKeepsRunsApart(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	other, _, err := b.store.StartRun(context.Background(), job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "test"})
	require.NoError(t, err)
	_, err = b.run(t, fastConfig())
	require.ErrorIs(t, err, job.ErrLocked)

	// A sharded run cannot start beside an unsharded one either.
	cfg := fastConfig()
	cfg.Shard = job.Shard{Index: 1, Count: 2}
	_, err = b.run(t, cfg)
	require.ErrorIs(t, err, job.ErrLocked)

	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs`), "only the run holding the lock started")
	require.NoError(t, other.Close(context.Background()))
	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, []int64{1}, sum.Recovered, "the run whose lock was released unfinished is found dead")
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	seedPolicies(t, b)
	b.seed(t, "plain", 10, func(i int) float64 { return float64(25 + i) })
	b.seed(t, "held", 3, days(400))
	snapshot := func() string {
		var s string
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT
			(SELECT coalesce(json_agg(r ORDER BY id)::text, '') FROM retention.runs r) ||
			(SELECT coalesce(json_agg(d ORDER BY id)::text, '') FROM retention.deletions d) ||
			(SELECT coalesce(json_agg(s ORDER BY character_id, session_id)::text, '') FROM retention.sessions s)`).Scan(&s))
		return s
	}
	before := snapshot()
	r, err := job.New(b.store, nil, fastConfig())
	require.NoError(t, err)
	sum, err := r.DryRun(context.Background(), "retention.sessions", true)
	require.NoError(t, err)
	require.True(t, sum.DryRun)
	require.EqualValues(t, 5, sum.Selected, "plain-s0005..9; the held plain-s0003 is not yet expired")
	require.Zero(t, sum.NotSent, "a dry-run sends nothing by design; nothing was kept from being sent")
	require.Equal(t, before, snapshot())
	require.Empty(t, b.fake.Requests())

	var plain job.CharacterSummary
	for _, c := range sum.Characters {
		if c.CharacterID == "plain" {
			plain = c
		}
	}
	require.Len(t, plain.SessionIDs, int(plain.Selected))

	// The real run sends exactly what the dry-run showed.
	real, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, sum.Selected, real.Deleted)
	require.ElementsMatch(t, prefixed(b.requested(), "plain/"), func() []string {
		var out []string
		for _, id := range plain.SessionIDs {
			out = append(out, "plain/"+id)
		}
		return out
	}())
}

func TestHoldPlacedMidRunIsHonoured(t *testing.T) {
	t.Parallel()
	var b *bundle
	var placed atomic.Bool
	b = setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first request of the run places a hold on character "b" before it is answered.
			if placed.CompareAndSwap(false, true) {
				_, err := b.pool.Exec(r.Context(), `INSERT INTO retention.holds (character_id, reason) VALUES ('b', 'placed mid-run')`)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "a", 5, func(i int) float64 { return float64(100 + i) }) // oldest: the first request is a's
	b.seed(t, "b", 30, days(50))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 5, 1
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.Empty(t, prefixed(b.requested(), "b/"), "nothing of b is sent after its hold committed")
	require.EqualValues(t, 5, sum.Deleted)
	require.EqualValues(t, 30, sum.SkippedByReason["held"])
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE character_id = 'b'`))
}

func TestHoldPlacedDuringRetriesStopsThem(t *testing.T) {
	t.Parallel()
	var b *bundle
	var calls atomic.Int32
	b = setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				if _, err := b.pool.Exec(r.Context(), `INSERT INTO retention.holds (character_id, session_id, reason)
					VALUES ('a', 'a-s0001', 'placed while retrying')`); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "a", 3, days(5))
	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, []string{"a/a-s0000", "a/a-s0002"}, b.requested())
	require.EqualValues(t, 2, sum.Deleted)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE session_id = 'a-s0001' AND status = 'failed' AND error LIKE 'a hold was placed during the run%'`))
}

func TestCancelDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 200 * time.Millisecond}, handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 3 {
				cancel() // the "signal" arrives while requests are in flight
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 100, days(2))
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency, cfg.ShutdownGrace = 5, 2, 10*time.Second
	sum, err := b.runWith(t, ctx, b.store, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, job.StatusInterrupted, sum.Status)
	n := len(b.fake.Requests())
	require.GreaterOrEqual(t, n, 3)
	require.LessOrEqual(t, n, 4, "only requests already in flight finish")
	// Every answer received is recorded; nothing is left pending.
	require.Equal(t, b.fakeDeleted(), b.recordedDeleted(t))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'interrupted' AND finished_at IS NOT NULL`))
}

func TestGraceOverCancelsRequests(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	b := setup(t, setupOpts{fake: convaitest.Options{HangRate: 1}, handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				cancel()
			}
			fake.ServeHTTP(w, r)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 3, days(2))
	cfg := fastConfig()
	cfg.Concurrency, cfg.ShutdownGrace, cfg.RequestTimeout = 1, 50*time.Millisecond, time.Minute
	sum, err := b.runWith(t, ctx, b.store, cfg)
	require.Error(t, err)
	require.Equal(t, job.StatusInterrupted, sum.Status)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE status = 'failed' AND error = 'no confirmation before the run was cancelled'`))
}

func TestDeadRunIsRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 4, days(2))
	// Two runs that died after claiming: one from before recording v2 (its pending rows in
	// deletions_v1), one after (a claim without outcomes). Their rows say running.
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE
		VALUES (899, now(), 'retention.sessions'), (900, now(), 'retention.sessions')`)
	b.exec(t, `INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age)
		SELECT 899, character_id, session_id, last_active_at, '1 day' FROM retention.sessions WHERE session_id = 'c-s0002'`)
	b.exec(t, `INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
		SELECT 900, 'c', '1 day', array_agg(session_id ORDER BY session_id), array_agg(last_active_at ORDER BY session_id)
		FROM retention.sessions WHERE session_id IN ('c-s0000', 'c-s0001')`)

	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, []int64{899, 900}, sum.Recovered)
	require.EqualValues(t, 4, sum.Deleted)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.runs WHERE id IN (899, 900) AND status = 'interrupted' AND finished_at IS NOT NULL`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions WHERE run_id = 899 AND status = 'failed'`))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.deletions WHERE run_id = 900 AND status = 'failed'
		AND error = 'the run ended before an answer was recorded; the session will be sent again'`))
	require.Equal(t, 2, b.count(t, `SELECT failed FROM retention.runs WHERE id = 900`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM (SELECT session_id FROM retention.deletions WHERE status = 'deleted'
		GROUP BY character_id, session_id HAVING count(*) <> 1) x`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`))
}

func TestShardsSplitTheWork(t *testing.T) {
	t.Parallel()
	// Three shards run at once, as the pods of an Indexed Job do; the requests overlap.
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 20 * time.Millisecond}})
	seedPolicies(t, b)
	for c := range 12 {
		b.seed(t, fmt.Sprintf("char-%d", c), 7, func(i int) float64 { return float64(20 + 4*i) }) // 4 of 7 expired
	}
	b.seed(t, "held", 3, days(400))
	want := b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions
		WHERE character_id LIKE 'char-%' AND last_active_at <= now() - interval '30 days'`)
	require.Len(t, want, 48)

	sums := make([]*job.Summary, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := fastConfig()
			cfg.ChunkSize, cfg.Shard = 2, job.Shard{Index: i, Count: 3}
			sums[i], errs[i] = b.run(t, cfg)
		}()
	}
	wg.Wait()
	var total int64
	for i := range 3 {
		require.NoError(t, errs[i], "shard %d", i)
		require.Positive(t, sums[i].Deleted, "shard %d got a share", i)
		total += sums[i].Deleted
	}
	require.EqualValues(t, 48, total)
	require.Equal(t, want, b.requested(), "together exactly what one run would send, none twice")
	require.Equal(t, want, b.recordedDeleted(t))
	require.Greater(t, b.fake.Stats().MaxInFlight, 1, "the shards did run side by side")
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	for _, c := range []job.Config{
		{ChunkSize: -1}, {Concurrency: -2}, {Rate: -1}, {MaxAttempts: 1000}, {MaxDeletions: -5},
		{BackoffBase: time.Second, BackoffMax: time.Millisecond}, {Shard: job.Shard{Index: 2, Count: 2}},
	} {
		var ce *job.ConfigError
		require.True(t, errors.As(c.Validate(), &ce), "%+v", c)
		require.NotEmpty(t, ce.Field)
	}
	require.NoError(t, job.Config{}.Validate())
}
