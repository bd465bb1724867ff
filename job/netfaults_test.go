package job_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// pgProxy puts a toxiproxy (the real fault proxy, as a library) between the job and the test
// database, and returns it with a store whose every connection goes through it.
func pgProxy(t *testing.T, b *bundle) (*toxiproxy.Proxy, *source.Store) {
	t.Helper()
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "postgres", "127.0.0.1:0", u.Host)
	require.NoError(t, p.Start())
	t.Cleanup(p.Stop)
	u.Host = p.Listen
	pool, err := pgxpool.New(context.Background(), u.String())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(t, err)
	src, err := source.Inspect(context.Background(), pool, rel)
	require.NoError(t, err)
	return p, source.New(pool, src, source.Config{WriteRetry: time.Second})
}

func toxic(t *testing.T, p *toxiproxy.Proxy, spec string) {
	t.Helper()
	_, err := p.Toxics.AddToxicJson(strings.NewReader(spec))
	require.NoError(t, err)
}

// requireInvariant: every eligible session is recorded deleted exactly once, and nothing is
// recorded deleted that the API did not delete.
func requireInvariant(t *testing.T, b *bundle, eligible int) {
	t.Helper()
	deleted := b.recordedDeleted(t)
	require.Len(t, deleted, eligible, "every eligible session deleted, once")
	require.Subset(t, b.fakeDeleted(), deleted, "no deleted row without a confirmation")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`))
}

// A slow network between the job and PostgreSQL changes nothing but the time.
func TestNetworkLatencyToPostgres(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	for _, c := range []string{"a", "b", "c"} {
		b.seed(t, c, 12, days(2))
	}
	p, store := pgProxy(t, b)
	toxic(t, p, `{"name": "slow_down", "type": "latency", "stream": "downstream", "attributes": {"latency": 15, "jitter": 5}}`)
	toxic(t, p, `{"name": "slow_up", "type": "latency", "stream": "upstream", "attributes": {"latency": 15, "jitter": 5}}`)
	cfg := fastConfig()
	cfg.ChunkSize = 5
	sum, err := b.runWith(t, context.Background(), store, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 36, sum.Deleted)
	requireInvariant(t, b, 36)
}

// The connection to PostgreSQL fails while the run is sending: reset at once, or silent until
// the proxy gives up on it. The run stops without recording what it cannot; the sessions the
// API deleted meanwhile are sent again by the next run, which finds the first one dead.
func TestNetworkFaultsToPostgresMidRun(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]string{
		"reset":           `{"name": "cut", "type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}}`,
		"stops answering": `{"name": "cut", "type": "timeout", "stream": "downstream", "attributes": {"timeout": 300}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var p atomic.Pointer[toxiproxy.Proxy]
			var requests atomic.Int32
			b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if requests.Add(1) == 3 {
						// The third request's answer arrives after the network broke: its
						// record (or the answer to it), and every claim after it, cannot get
						// through.
						_, err := p.Load().Toxics.AddToxicJson(strings.NewReader(spec))
						if err != nil {
							panic(fmt.Sprintf("add toxic: %v", err))
						}
					}
					fake.ServeHTTP(w, r)
				})
			}})
			b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
			for _, c := range []string{"a", "b", "c", "d"} {
				b.seed(t, c, 10, days(2))
			}
			proxy, store := pgProxy(t, b)
			p.Store(proxy)
			cfg := fastConfig()
			cfg.ChunkSize, cfg.Concurrency = 5, 1
			_, err := b.runWith(t, context.Background(), store, cfg)
			require.Error(t, err, "the run cannot record, and says so")
			require.GreaterOrEqual(t, len(b.fakeDeleted()), 15, "the API deleted three chunks")
			// What is recorded deleted was confirmed (a record whose answer was lost on the way back
			// may have committed all the same: it is still true).
			for _, d := range b.recordedDeleted(t) {
				require.Contains(t, b.fakeDeleted(), d)
			}

			// The network heals; the next run repairs the dead run and finishes the work.
			require.NoError(t, proxy.Toxics.RemoveToxic(context.Background(), "cut"))
			require.Eventually(t, func() bool {
				return b.count(t, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275269
					AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 0
			}, 30*time.Second, 50*time.Millisecond, "the dead run's lock goes with its connection")
			sum, err := b.runWith(t, context.Background(), store, fastConfig())
			require.NoError(t, err)
			require.NotEmpty(t, sum.Recovered)
			requireInvariant(t, b, 40)
			require.Equal(t, job.StatusSucceeded, sum.Status)
		})
	}
}
