package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// appName is the application_name the retention binary gives its connections.
const appName = "convai-retention"

// samplePeriod is how often the sampler looks at the database, the process and the fake.
const samplePeriod = 50 * time.Millisecond

// progressPoint is how many sessions the fake had deleted at a moment of the run.
type progressPoint struct {
	at      time.Duration // since the retention process started
	deleted int
}

// samples is what the sampler saw during one run.
type samples struct {
	mu sync.Mutex
	// longest is the longest time a retention backend had been inside one transaction, at any
	// sample, with the statement and state it showed then.
	longest      time.Duration
	longestQuery string
	longestState string
	// backends is the most retention backends seen at once.
	backends int
	// rss is the largest resident set read from /proc.
	rss int64
	// firstRequest is when the fake first counted a request, since the process started.
	firstRequest time.Duration
	progress     []progressPoint
	errs         int
}

// sampler polls until stop is closed. began is when the retention process was started.
type sampler struct {
	admin  *pgxpool.Pool
	dbName string
	pid    int
	fake   *fake
	began  time.Time
}

// run samples every samplePeriod, and the fake every 2ms until its first request, until ctx is
// done.
func (s *sampler) run(ctx context.Context) *samples {
	out := &samples{firstRequest: -1}
	var wg sync.WaitGroup
	wg.Go(func() { s.firstRequest(ctx, out) })
	wg.Go(func() {
		tick := time.NewTicker(samplePeriod)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s.activity(ctx, out)
			if rss := vmRSS(s.pid); rss > 0 {
				out.mu.Lock()
				out.rss = max(out.rss, rss)
				out.mu.Unlock()
			}
			if n++; n%2 == 0 {
				if st, err := s.fake.stats(ctx); err == nil {
					out.mu.Lock()
					out.progress = append(out.progress, progressPoint{at: time.Since(s.began), deleted: st.Deleted})
					out.mu.Unlock()
				}
			}
		}
	})
	wg.Wait()
	return out
}

func (s *sampler) firstRequest(ctx context.Context, out *samples) {
	for ctx.Err() == nil {
		st, err := s.fake.stats(ctx)
		at := time.Since(s.began)
		if err == nil && st.Requests > 0 {
			out.mu.Lock()
			out.firstRequest = at
			out.mu.Unlock()
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// activity records the longest open transaction of the retention backends right now.
func (s *sampler) activity(ctx context.Context, out *samples) {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var seconds float64
	var query, state string
	var backends int
	err := s.admin.QueryRow(qctx, `
		SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start) FILTER (WHERE xact_start IS NOT NULL)), 0)::float8,
		       coalesce((array_agg(left(query, 300) ORDER BY xact_start) FILTER (WHERE xact_start IS NOT NULL))[1], ''),
		       coalesce((array_agg(state ORDER BY xact_start) FILTER (WHERE xact_start IS NOT NULL))[1], ''),
		       count(*)
		FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, s.dbName, appName).Scan(&seconds, &query, &state, &backends)
	out.mu.Lock()
	defer out.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			out.errs++
		}
		return
	}
	out.backends = max(out.backends, backends)
	longest := time.Duration(seconds * float64(time.Second))
	if longest > out.longest {
		out.longest, out.longestQuery, out.longestState = longest, strings.Join(strings.Fields(query), " "), state
	}
}
