package main

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
)

// TestStandbyPromotedMidRun fails the database over while a run is sending: a primary and its
// streaming standby (asynchronous, started by the test with scripts/pg.sh), DATABASE_URL naming
// both hosts with target_session_attrs=read-write; the primary crashes and the standby is
// promoted. The run stops (its lock was on the old primary) without recording anything the API
// did not confirm; the next run, which the URL sends to the new primary, finishes the work:
// every eligible session recorded deleted exactly once, nothing pending, no run left running,
// and the results trail still verifies.
func TestStandbyPromotedMidRun(t *testing.T) {
	t.Parallel()
	// With synchronous_commit on, the primary acknowledges a commit once it is durable there;
	// the standby may still miss the last ones, but on loopback it rarely does. With it off
	// (the throwaway server's setting), the primary acknowledges commits up to a WAL writer
	// delay before it writes them, and the standby cannot have them either: a failover then
	// loses acknowledged commits every time, as with a standby that lags.
	for _, sync := range []string{"on", "off"} {
		t.Run("synchronous_commit="+sync, func(t *testing.T) {
			t.Parallel()
			testStandbyPromotedMidRun(t, sync)
		})
	}
}

func testStandbyPromotedMidRun(t *testing.T, sync string) {
	const concurrency = 2
	primary := startServer(t)
	b := setupOn(t, primary.url)
	r := b.startWith(t, map[string]string{"DATABASE_URL": primary.url}, "migrate").wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	eligible := append(b.seedWorld(t), b.seedBulk(t, 4, 40)...)
	sort.Strings(eligible)
	b.exec(t, `ALTER SYSTEM SET synchronous_commit = `+sync)
	b.exec(t, `SELECT pg_reload_conf()`)
	standby := pgScript(t, "standby", primary.dir)
	// The standby accepts connections before its WAL receiver has reached the primary.
	deadline := time.Now().Add(30 * time.Second)
	for b.countNow(`SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`) != 1 {
		require.True(t, time.Now().Before(deadline), "the standby does not stream: %v",
			b.strings(t, `SELECT state FROM pg_stat_replication`))
		time.Sleep(20 * time.Millisecond)
	}
	multi := fmt.Sprintf("postgres://postgres@127.0.0.1:%s,127.0.0.1:%s/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		port(t, primary.url), port(t, standby.url))
	b.env["DATABASE_URL"], b.db.URL = multi, multi
	b.freshPool(t)

	b.fake.Update(func(o *convaitest.Options) { o.Latency = 100 * time.Millisecond })
	args := []string{"run", "--concurrency", fmt.Sprint(concurrency), "--chunk-size", "5"}
	p := b.start(t, args...)
	target := len(eligible) / 3
	p.waitUntil(t, fmt.Sprintf("%d deletions are recorded", target), func() bool { return b.countNow(deletedSQL) >= target })
	var run int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT id FROM retention.runs WHERE status = 'running'`).Scan(&run))
	primary.pgCtl(t, "-m", "immediate", "stop")
	crashed := time.Now()
	standby.pgCtl(t, "promote")
	t.Logf("the standby was promoted %v after the primary crashed", time.Since(crashed).Round(time.Millisecond))

	res := p.wait(t)
	t.Logf("the run during the failover: exit %d, %v after the crash\n%s%s", res.code, time.Since(crashed).Round(time.Millisecond),
		res.stdout, errorLines(res.stderr))
	require.Equal(t, exitcode.Fatal, res.code, "the run's lock went with the old primary: it stops with exit 5\n%s", res)
	b.freshPool(t)
	var promoted bool
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT NOT pg_is_in_recovery()`).Scan(&promoted))
	require.True(t, promoted, "the URL leads to the promoted standby")
	status := b.strings(t, `SELECT status FROM retention.runs WHERE id = $1`, run)
	t.Logf("on the promoted standby, the run's row is %v", status)
	require.Contains(t, [][]string{{"running"}, {"failed"}}, status,
		"the run's row survived (its start was replicated long before) and is failed, or running if its end was lost")

	// Nothing recorded deleted that the API did not confirm, nothing recorded deleted twice.
	// What the old primary acknowledged but had not sent to the standby is lost: a lost record
	// leaves the session unrecorded, so the next run sends it again.
	unrecorded := b.requireNoFalseRecord(t)
	t.Logf("%d sessions recorded deleted on the promoted standby; %d deleted at the API are not (sent again by the next run): %v",
		len(b.recordedDeleted(t)), len(unrecorded), unrecorded)

	final := b.start(t, args...).wait(t)
	require.Equal(t, exitcode.OK, final.code, "%s", final)
	require.Equal(t, b.fakeDeleted(), b.recordedDeleted(t), "every session deleted at the API is recorded deleted exactly once")
	b.requireAllDeletedOnce(t, eligible)
	require.True(t, subset(b.gate.requested(), eligible), "nothing ineligible was sent")

	v := b.run(t, "audit", "verify")
	require.Equal(t, exitcode.OK, v.code, "the results trail verifies after the failover\n%s", v)
	t.Logf("audit verify: %s", v.stdout)
}

// port returns the port of a URL.
func port(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Port()
}
