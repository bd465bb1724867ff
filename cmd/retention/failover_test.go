package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
)

// throwawayServer is a PostgreSQL server of the test's own, started with scripts/pg.sh, that
// the test may restart.
type throwawayServer struct {
	dir, url string
}

// startServer starts a throwaway server in a new directory under the system temporary
// directory (as root, pg.sh hands it to the postgres user, which must reach it: t.TempDir's
// parents are closed to other users). It is stopped and removed when the test ends.
func startServer(t *testing.T) *throwawayServer {
	t.Helper()
	return pgScript(t, "start")
}

// pgScript runs scripts/pg.sh cmd with args and a new directory, and returns the server it
// started there; the server is stopped and its directory removed when the test ends.
func pgScript(t *testing.T, cmd string, args ...string) *throwawayServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "retention-failover-")
	require.NoError(t, err)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "pg.sh"))
	require.NoError(t, err)
	c := exec.Command("bash", append(append([]string{script, cmd}, args...), dir)...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("scripts/pg.sh %s: %v\n%s", cmd, err, stderr.String())
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("scripts/pg.sh stop: %v\n%s", err, out)
			_ = os.RemoveAll(dir)
		}
	})
	return &throwawayServer{dir: dir, url: strings.TrimSpace(string(out))}
}

// pgCtl runs pg_ctl on the server's cluster, as the cluster's owner.
func (s *throwawayServer) pgCtl(t *testing.T, args ...string) {
	t.Helper()
	// postmaster.opts names the server binary the cluster was started with; pg_ctl is beside it.
	opts, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.opts"))
	require.NoError(t, err)
	m := regexp.MustCompile(`^(\S+)/postgres\b`).FindSubmatch(opts)
	require.NotNil(t, m, "postmaster.opts: %s", opts)
	args = append([]string{string(m[1]) + "/pg_ctl", "-D", filepath.Join(s.dir, "data"), "-w", "-t", "60"}, args...)
	if os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	// Output to a file, not a pipe: a started server must not inherit the test's pipe.
	logFile, err := os.CreateTemp("", "retention-pg-ctl-")
	require.NoError(t, err)
	defer os.Remove(logFile.Name())
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logFile.Name())
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// stop stops the server in the given shutdown mode ("fast" ends every session, as a planned
// failover does; "immediate" kills the server like a crash, and it recovers on start).
func (s *throwawayServer) stop(t *testing.T, mode string) {
	t.Helper()
	s.pgCtl(t, "-m", mode, "stop")
}

// start starts the server stopped by stop, on its port.
func (s *throwawayServer) start(t *testing.T) {
	t.Helper()
	u, err := url.Parse(s.url)
	require.NoError(t, err)
	s.pgCtl(t, "-l", filepath.Join(s.dir, "postgres.log"), "-o", "-p "+u.Port(), "start")
}

// setupOn is setup on a database the test made itself: the fake behind a gate, and the
// program's environment.
func setupOn(t *testing.T, dsn string) *bundle {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	fake := convaitest.New(convaitest.Options{APIKey: testKey})
	g := &gate{next: fake, open: make(chan struct{})}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.release()
		fake.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &bundle{db: &pgtest.Database{Name: "postgres", URL: dsn, Pool: pool}, fake: fake, gate: g, srv: srv,
		env: map[string]string{
			"DATABASE_URL":           dsn,
			"CONVAI_API_KEY":         testKey,
			"CONVAI_API_URL":         srv.URL,
			"RETENTION_RATE":         "0",
			"RETENTION_BACKOFF_BASE": "1ms",
			"RETENTION_BACKOFF_MAX":  "5ms",
		}}
}

// freshPool replaces the bundle's pool with a new one: after a restart every pooled
// connection is dead.
func (b *bundle) freshPool(t *testing.T) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), b.db.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.db.Pool = pool
}

// TestDatabaseRestartMidRun restarts the test's own PostgreSQL while a run is sending, three
// times: a fast stop, a crash, and a crash that loses acknowledged commits. The run
// rides through or stops with exit 5; either way it sends nothing it cannot claim, records
// nothing the API did not confirm, and loses no confirmed outcome: what the API deleted is
// recorded deleted once the server is back. The following run completes: every session deleted
// at the fake is recorded deleted exactly once, nothing is pending, no run is left running.
func TestDatabaseRestartMidRun(t *testing.T) {
	t.Parallel()
	const concurrency = 2
	type restart struct {
		mode  string // pg_ctl's shutdown mode
		lossy bool   // commits are acknowledged before they are durable
	}
	// Every kind of restart, in both versions: a planned restart, a crash, and a crash that
	// loses the last commits (like a failover to a replica that lags).
	restarts := []restart{{mode: "fast"}, {mode: "immediate"}, {mode: "immediate", lossy: true}}
	chars, perChar, downtime := 4, 40, time.Second
	if heavy() {
		// Runs long enough for the run lock's watchdog (every 10s) to look at the lock's
		// connection, and a longer outage.
		chars, perChar, downtime = 10, 250, 3*time.Second
	}
	srv := startServer(t)
	b := setupOn(t, srv.url)
	r := b.startWith(t, map[string]string{"DATABASE_URL": srv.url}, "migrate").wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	eligible := append(b.seedWorld(t), b.seedBulk(t, chars, perChar)...)
	sort.Strings(eligible)
	b.fake.Update(func(o *convaitest.Options) { o.Latency = 100 * time.Millisecond })
	args := []string{"run", "--concurrency", fmt.Sprint(concurrency), "--chunk-size", "5"}

	for i, rs := range restarts {
		// The throwaway server turns synchronous_commit off for speed; a crash then loses the
		// commits of its last moments. Only the lossy restart keeps it so.
		sync := map[bool]string{false: "on", true: "off"}[rs.lossy]
		b.exec(t, `ALTER SYSTEM SET synchronous_commit = `+sync)
		b.exec(t, `SELECT pg_reload_conf()`)

		p := b.start(t, args...)
		target := b.countNow(deletedSQL) + len(eligible)/(2*len(restarts)+2)
		p.waitUntil(t, fmt.Sprintf("%d deletions are recorded", target), func() bool { return b.countNow(deletedSQL) >= target })
		// Counted from the moment the server is down (pg_ctl stop has returned) until it is
		// started again: before that moment the run may claim and send as usual, for as long
		// as pg_ctl takes to stop it on a busy machine.
		srv.stop(t, rs.mode)
		before := b.gate.served.Load()
		time.Sleep(downtime)
		during := b.gate.served.Load() - before
		srv.start(t)
		// Only a chunk claimed before the server went down can be sent: one per worker.
		require.LessOrEqual(t, during, int64(concurrency), "the run kept sending while it could not record")
		b.freshPool(t)

		res := p.wait(t)
		t.Logf("run %d, restarted with -m %s, synchronous_commit %s, down %v (%d requests reached the API meanwhile): exit %d\n%s%s",
			i+1, rs.mode, sync, downtime, during, res.code, res.stdout, errorLines(res.stderr))
		require.Contains(t, []int{exitcode.OK, exitcode.Fatal}, res.code, "the run rides through or stops with exit 5\n%s", res)
		b.freshPool(t)

		// Nothing sent without a committed claim, nothing recorded deleted unconfirmed, no
		// confirmed deletion left unrecorded: unless the server lost commits it had
		// acknowledged, and with them claims of sessions already sent.
		claimed := map[string]bool{}
		for _, k := range b.strings(t, `SELECT DISTINCT character_id || '/' || session_id FROM retention.deletions`) {
			claimed[k] = true
		}
		var unclaimed []string
		for _, k := range b.gate.requested() {
			if !claimed[k] {
				unclaimed = append(unclaimed, k)
			}
		}
		unrecorded := b.requireNoFalseRecord(t)
		if rs.lossy {
			// A lost claim, or a lost record of a confirmation: either way the session is not
			// recorded deleted, so the next run selects it again and records it.
			t.Logf("the server lost acknowledged commits: %d sessions were sent under a claim that is gone, "+
				"%d deleted at the API are not recorded deleted (sent again by the next run): %v", len(unclaimed), len(unrecorded), unrecorded)
		} else {
			require.Empty(t, unclaimed, "sent without a committed claim")
			require.Empty(t, unrecorded, "a deletion the API confirmed is not recorded")
		}
		require.Zero(t, b.count(t, pendingSQL))
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))
	}

	final := b.start(t, args...).wait(t)
	require.Equal(t, exitcode.OK, final.code, "%s", final)
	require.Equal(t, b.fakeDeleted(), b.recordedDeleted(t), "every session deleted at the fake is recorded deleted exactly once")
	b.requireAllDeletedOnce(t, eligible)
	require.True(t, subset(b.gate.requested(), eligible), "nothing ineligible was sent")
}

// errorLines returns the log lines of level WARN or ERROR, and any line that is not a log record.
func errorLines(stderr string) string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if l != "" && (!strings.HasPrefix(l, "{") || strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`)) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
