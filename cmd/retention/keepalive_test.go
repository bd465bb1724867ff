package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// lockCheckInterval is how often a run checks its lock's connection.
const lockCheckInterval = job.LockCheckIntervalDefault

// runLockHolderSQL returns the pid of the backend holding a run lock, or none.
const runLockHolderSQL = `SELECT pid FROM pg_locks
	WHERE locktype = 'advisory' AND classid = 1380275269 AND objsubid = 2 AND granted
	  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// TestCutConnectionFreesTheRunLock cuts the cable between a running job and its database: in a
// network namespace of its own, every TCP packet to and from the server's port is dropped while
// the run holds its lock. The server's keepalives (short ones, given in the connection string)
// find the job gone and end its session, which frees the lock, within about
// idle + interval × count; left alone, the same session keeps the lock. The job notices the dead
// server on its own (its lock watchdog's ping times out) and stops sending; once the cable is
// back it exits with 5, and a following run finishes the work.
func TestCutConnectionFreesTheRunLock(t *testing.T) {
	t.Parallel()
	if !inNetns(t) {
		return
	}
	const idle, interval, count, userTimeout = 2 * time.Second, time.Second, 3, 5 * time.Second
	srv := startServer(t)
	port := srv.port(t)
	// The test's own connections go through the Unix socket, which the rule leaves alone.
	b := setupOn(t, srv.socketURL(t))
	dsn := fmt.Sprintf("%s&tcp_keepalives_idle=%d&tcp_keepalives_interval=%d&tcp_keepalives_count=%d&tcp_user_timeout=%d",
		srv.url, idle/time.Second, interval/time.Second, count, userTimeout/time.Millisecond)
	env := with(b.env, "DATABASE_URL", dsn)
	bin := netnsBinary(t)
	r := startProcess(t, bin, envList(env), "migrate").wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	eligible := b.seedBulk(t, 2, 10)

	// The first request is answered; the next hangs, and the run holds its lock meanwhile.
	b.gate.hangAfter(1)
	p := startProcess(t, bin, envList(env), "run", "--concurrency", "1", "--chunk-size", "5", "--request-timeout", "20s")
	p.waitUntil(t, "a deletion is recorded and a request hangs", func() bool {
		return b.countNow(deletedSQL) > 0 && b.gate.holding.Load() > 0
	})
	holder := b.count(t, runLockHolderSQL)
	require.Equal(t, "127.0.0.1", b.strings(t, `SELECT host(client_addr) FROM pg_stat_activity WHERE pid = $1`, holder)[0],
		"the lock's session comes over TCP")

	// Left alone, the idle session answers the server's probes and keeps the lock.
	quiet := idle + interval*count + 2*time.Second
	time.Sleep(quiet)
	require.Equal(t, []string{fmt.Sprint(holder)}, b.strings(t, runLockHolderSQL+` AND pid = $1`, holder),
		"the lock is kept by a live connection for %v, longer than the probes take to give up", quiet)

	nft(t, "add", "table", "inet", "cut")
	nft(t, "add", "chain", "inet", "cut", "in", "{ type filter hook input priority 0 ; }")
	nft(t, "add", "rule", "inet", "cut", "in", "tcp", "dport", port, "drop")
	nft(t, "add", "rule", "inet", "cut", "in", "tcp", "sport", port, "drop")
	cut := time.Now()
	deadline := cut.Add(time.Minute)
	gone := fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE pid = %d`, holder)
	for b.countNow(`SELECT count(*) FROM (`+runLockHolderSQL+`) l`) != 0 || b.countNow(gone) != 0 {
		require.True(t, time.Now().Before(deadline), "the server still holds the lock a minute after the cut")
		time.Sleep(50 * time.Millisecond)
	}
	freed := time.Since(cut)
	t.Logf("the server freed the run lock %v after the cut (keepalives %v idle, %v × %d; tcp_user_timeout %v)",
		freed.Round(10*time.Millisecond), idle, interval, count, userTimeout)
	nominal := max(idle+interval*count, userTimeout)
	require.GreaterOrEqual(t, freed, interval*(count-1), "the lock went before the probes could have failed")
	require.LessOrEqual(t, freed, nominal+10*time.Second, "freed within about %v", nominal)

	// The job's watchdog pings the lock's connection every LockCheckInterval, for at most 5 s:
	// the job notices the dead server on its own, with the cable still cut.
	noticed := lockCheckInterval + 5*time.Second + 10*time.Second
	for !strings.Contains(p.stderr.String(), `"run stops sending","err":"lost the run lock`) {
		require.Less(t, time.Since(cut), noticed, "the job did not notice the dead server\n%s", p.stderr.String())
		p.sleepOrEnd(50 * time.Millisecond)
	}
	t.Logf("the job noticed %v after the cut", time.Since(cut).Round(10*time.Millisecond))

	// The cable is back: the job records what it can, and ends with its database error.
	nft(t, "delete", "table", "inet", "cut")
	b.gate.release()
	res := p.wait(t)
	t.Logf("the job exited %v after the cut: exit %d\n%s%s", time.Since(cut).Round(10*time.Millisecond), res.code, res.stdout, errorLines(res.stderr))
	require.Equal(t, exitcode.Fatal, res.code, "%s", res)
	require.Contains(t, res.stderr, "lost the run lock")
	require.Equal(t, []string{"failed"}, b.strings(t, `SELECT status FROM retention.runs`))
	b.requireNoFalseRecord(t)

	final := startProcess(t, bin, envList(env), "run").wait(t)
	require.Equal(t, exitcode.OK, final.code, "%s", final)
	b.requireAllDeletedOnce(t, eligible)
}

// envList is env as a process environment.
func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// TestCutForGoodEndsTheRun cuts the cable between a running job and its database and never
// restores it. The job notices (its lock watchdog), stops sending, and ends within its
// wind-down bound (--shutdown-grace + --request-timeout + job.WindDownReserve after the stop,
// then the lock's release and the pool's close) with exit 5, although none of its last writes
// can reach the server. Before the bound (and the pool's ping and connect timeouts), a cut for
// good kept the process alive for more than six minutes, each store call waiting out its own
// limit, then closing the pool waiting on a ping. Once the cable is back, the next run repairs
// the dead run and finishes the work.
func TestCutForGoodEndsTheRun(t *testing.T) {
	t.Parallel()
	if !inNetns(t) {
		return
	}
	srv := startServer(t)
	port := srv.port(t)
	b := setupOn(t, srv.socketURL(t))
	dsn := srv.url + "&tcp_keepalives_idle=2&tcp_keepalives_interval=1&tcp_keepalives_count=3&tcp_user_timeout=5000"
	env := with(b.env, "DATABASE_URL", dsn)
	bin := netnsBinary(t)
	r := startProcess(t, bin, envList(env), "migrate").wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	eligible := b.seedBulk(t, 2, 10)

	const grace, requestTimeout = time.Second, 3 * time.Second
	b.gate.hangAfter(1)
	p := startProcess(t, bin, envList(env), "run", "--concurrency", "1", "--chunk-size", "5",
		"--shutdown-grace", grace.String(), "--request-timeout", requestTimeout.String())
	p.waitUntil(t, "a deletion is recorded and a request hangs", func() bool {
		return b.countNow(deletedSQL) > 0 && b.gate.holding.Load() > 0
	})

	nft(t, "add", "table", "inet", "cut")
	nft(t, "add", "chain", "inet", "cut", "in", "{ type filter hook input priority 0 ; }")
	nft(t, "add", "rule", "inet", "cut", "in", "tcp", "dport", port, "drop")
	nft(t, "add", "rule", "inet", "cut", "in", "tcp", "sport", port, "drop")
	cut := time.Now()

	noticed := lockCheckInterval + 5*time.Second + 10*time.Second
	for !strings.Contains(p.stderr.String(), `"run stops sending"`) {
		require.Less(t, time.Since(cut), noticed, "the job did not notice the dead server\n%s", p.stderr.String())
		p.sleepOrEnd(50 * time.Millisecond)
	}
	stopped := time.Since(cut)
	// The wind-down, then releasing the lock (5 s at most) and closing the pool, whose broken
	// connections pgx closes with a cancel request each (15 s at most, their dials 10 s).
	bound := grace + requestTimeout + job.WindDownReserve + 5*time.Second + 15*time.Second
	select {
	case <-p.done:
	case <-time.After(bound + 20*time.Second):
		// A goroutine dump says where it waits.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		p.sleepOrEnd(2 * time.Second)
		t.Fatalf("the job had not ended %v after it stopped (bound %v), the cable still cut\n%s",
			time.Since(cut)-stopped, bound, p.stderr.String())
	}
	res := p.wait(t)
	t.Logf("the job stopped %v after the cut and exited %v after the stop (bound %v): exit %d\n%s",
		stopped.Round(10*time.Millisecond), (time.Since(cut) - stopped).Round(10*time.Millisecond), bound, res.code, errorLines(res.stderr))
	require.Equal(t, exitcode.Fatal, res.code, "%s", res)

	// The cable is back: the server long since ended the dead run's session, so the next run
	// takes the lock, marks the dead run interrupted and finishes the work.
	nft(t, "delete", "table", "inet", "cut")
	b.gate.release()
	final := startProcess(t, bin, envList(env), "run").wait(t)
	require.Equal(t, exitcode.OK, final.code, "%s", final)
	b.requireAllDeletedOnce(t, eligible)
}
