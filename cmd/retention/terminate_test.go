package main

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
)

// TestTerminatedBackendsThenTheNextRunFinishes: someone with the job's credentials (or an
// administrator) ends every database session of a running run with pg_terminate_backend. The
// run stops with exit 5 and records nothing it was not told; the next run repairs it and
// finishes the work, every eligible session deleted exactly once.
func TestTerminatedBackendsThenTheNextRunFinishes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedBulk(t, 6, 60)
	sort.Strings(eligible)
	b.fake.Update(func(o *convaitest.Options) { o.Latency = 20 * time.Millisecond })

	p := b.start(t, "run", "--concurrency", "2", "--chunk-size", "10", "--shutdown-grace", "1s")
	p.waitUntil(t, "some deletions are recorded", func() bool { return b.countNow(deletedSQL) > 0 })
	b.exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'convai-retention'`)
	r := p.wait(t)
	require.Equal(t, exitcode.Fatal, r.code, "%s", r)
	b.waitBackendsGone(t)
	b.requireNoFalseRecord(t)

	r = b.run(t, "run", "--concurrency", "2", "--chunk-size", "10")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	b.requireAllDeletedOnce(t, eligible)
}
