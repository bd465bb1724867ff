package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/pgbouncertest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

// poolerModes are the PgBouncer modes the job works through. Statement mode allows no
// transaction and is refused (TestPoolerStatementModeIsRefused).
var poolerModes = []pgbouncertest.Mode{pgbouncertest.Transaction, pgbouncertest.Session}

// eachPoolerMode runs test as a parallel subtest per mode of poolerModes.
func eachPoolerMode(t *testing.T, test func(t *testing.T, mode pgbouncertest.Mode)) {
	t.Helper()
	for _, mode := range poolerModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			test(t, mode)
		})
	}
}

// pooled returns b's environment with DATABASE_URL going through a pgbouncer of the test's own
// in mode; the test's own queries (b.db.Pool) still go to the server directly.
func pooled(t *testing.T, b *bundle, mode pgbouncertest.Mode) map[string]string {
	t.Helper()
	p := pgbouncertest.Start(t, mode)
	return with(b.env, "DATABASE_URL", p.URL(b.db.URL))
}

// runLocksHeldSQL counts the run locks held in the bundle's database.
const runLocksHeldSQL = `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275269
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// waitQuiet waits until no run lock is held in b's database and no other session of it is
// running a statement or sitting in a transaction: a dead client's last statements have ended
// (through a pooler, its server sessions stay, idle).
func (b *bundle) waitQuiet(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for b.countNow(runLocksHeldSQL) != 0 || b.countNow(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
		  AND state <> 'idle'`) != 0 {
		require.True(t, time.Now().Before(deadline), "the dead run's lock or statements stay:\n%s",
			b.strings(t, `SELECT pid || ' ' || coalesce(state, '') || ' ' || coalesce(query, '') FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`))
		time.Sleep(20 * time.Millisecond)
	}
}

// requireSentOnce checks the invariants of every pooler test: no session was sent twice, every
// session recorded deleted was confirmed by the fake, and the eligible sessions are all deleted
// once.
func (b *bundle) requireSentOnce(t *testing.T, eligible []string) {
	t.Helper()
	sent := b.gate.requested()
	require.True(t, unique(sent), "no session sent twice: %v", sent)
	require.True(t, subset(sent, eligible), "nothing but eligible sessions sent")
	require.Equal(t, eligible, b.recordedDeleted(t), "every eligible session recorded deleted, once")
	require.Equal(t, eligible, b.fakeDeleted(), "recorded deleted = deleted at the fake")
	require.Zero(t, b.count(t, pendingSQL))
}

// TestPoolerMigrateRunVerifyReport: through PgBouncer, on an empty database, two migrates at
// once bring the schema up (one waits for the other) and leave no lock behind; then a run
// deletes what it must, verify checks it at the API, and report reads it.
func TestPoolerMigrateRunVerifyReport(t *testing.T) {
	t.Parallel()
	eachPoolerMode(t, func(t *testing.T, mode pgbouncertest.Mode) {
		db := pgtest.NewEmpty(t)
		b := setupOn(t, db.URL)
		env := pooled(t, b, mode)

		first, second := b.startWith(t, env, "migrate"), b.startWith(t, env, "migrate")
		var was []string
		for _, p := range []*proc{first, second} {
			r := p.wait(t)
			require.Equal(t, exitcode.OK, r.code, "%s", r)
			m := regexp.MustCompile(`^schema version (\d+) \(was (\d+)\)\n$`).FindStringSubmatch(r.stdout)
			require.NotNil(t, m, "%s", r)
			require.Equal(t, strconv.Itoa(int(migrations.Latest())), m[1])
			was = append(was, m[2])
		}
		sort.Strings(was)
		require.Equal(t, []string{"0", strconv.Itoa(int(migrations.Latest()))}, was, "one migrated, the other found it done")
		require.Zero(t, b.count(t, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`),
			"no advisory lock is left on a server session of the pooler")

		eligible := b.seedWorld(t)
		r := run(t, env, "run")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Regexp(t, `^run \d+ succeeded: `+strconv.Itoa(len(eligible))+` selected`, r.stdout)
		b.requireSentOnce(t, eligible)

		b.witnesses(t)
		r = run(t, env, "verify")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, "checked "+strconv.Itoa(len(eligible))+" deleted sessions")

		r = run(t, env, "report", "--format", "json")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		var rep struct {
			Total struct{ Deleted, Held int } `json:"total"`
			Runs  []struct{ Status string }   `json:"runs"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
		require.Equal(t, len(eligible), rep.Total.Deleted)
		require.Equal(t, worldSkippedHeld, rep.Total.Held)
		require.Equal(t, []struct{ Status string }{{"succeeded"}}, rep.Runs)
	})
}

// TestPoolerPolicyApply: through PgBouncer, policy apply reads the intervals of a file in one
// pipeline, a statement and a Sync per value, and a value PostgreSQL refuses fails only itself.
func TestPoolerPolicyApply(t *testing.T) {
	t.Parallel()
	eachPoolerMode(t, func(t *testing.T, mode pgbouncertest.Mode) {
		b := setup(t)
		b.seedWorld(t)
		env := pooled(t, b, mode)
		file := writeFile(t, "default:\n  max_age: 30 days\ncharacters:\n  a:\n    max_age: thirty days\n"+
			"  b:\n    max_age: 10 minutes\n  c:\n    max_age: 1 year\n")
		r := run(t, env, "policy", "apply", "-f", file, "--dry-run")
		require.Equal(t, exitcode.Usage, r.code, "%s", r)
		require.Contains(t, r.stderr, file+`:5: character "a": max_age "thirty days" is not an interval PostgreSQL reads`)
		require.Contains(t, r.stderr, file+`:7: character "b": max_age '00:10:00' is under one hour`)
		require.Equal(t, 2, strings.Count(r.stderr, file+":"), "%s", r)

		r = run(t, env, "policy", "apply", "-f", writeFile(t, "default:\n  max_age: 30 days\ncharacters:\n  c:\n    max_age: 1 year\n"), "--dry-run")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, `+ character "c": max_age 1 year`)
	})
}

// TestPoolerOverlappingRunsExit3: while a run holds its lock (a request of it hangs), runs
// started through the same pooler exit 3, naming the lock's holder, and start nothing; in
// transaction mode the server session that took the lock is not handed to them. The run
// holding the lock then finishes; nothing was sent twice.
func TestPoolerOverlappingRunsExit3(t *testing.T) {
	t.Parallel()
	eachPoolerMode(t, func(t *testing.T, mode pgbouncertest.Mode) {
		b := setup(t)
		env := pooled(t, b, mode)
		eligible := b.seedBulk(t, 4, 20)
		b.gate.hangAfter(1)

		first := b.startWith(t, env, "run", "--concurrency", "2", "--chunk-size", "5")
		first.waitUntil(t, "a request of the first run hangs", func() bool { return b.gate.holding.Load() > 0 })
		holder := b.count(t, `SELECT lock_pid FROM retention.run_keys`)
		others := make([]*proc, 4)
		for i := range others {
			others[i] = b.startWith(t, env, "run", "--concurrency", "2", "--chunk-size", "5")
		}
		for _, p := range others {
			r := p.wait(t)
			require.Equal(t, exitcode.Locked, r.code, "%s", r)
			require.Contains(t, r.stderr, "another retention run holds the lock")
			require.Contains(t, r.stderr, fmt.Sprintf("held by pid %d", holder))
		}
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs`), "only the first run started")

		b.gate.release()
		r := first.wait(t)
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		b.requireSentOnce(t, eligible)
		require.Zero(t, b.count(t, runLocksHeldSQL), "the lock is free once the run ended")
	})
}

// TestPoolerKilledRunIsRecovered: a run killed with SIGKILL mid-request through the pooler
// loses its lock at once (the pooler closes the server session of a client that left
// mid-transaction); the next run marks it interrupted, fails what it left unanswered and
// deletes everything, each session once, nothing recorded deleted unconfirmed.
func TestPoolerKilledRunIsRecovered(t *testing.T) {
	t.Parallel()
	eachPoolerMode(t, func(t *testing.T, mode pgbouncertest.Mode) {
		b := setup(t)
		env := pooled(t, b, mode)
		eligible := append(b.seedWorld(t), b.seedBulk(t, 6, 10)...)
		sort.Strings(eligible)
		b.gate.hangAfter(3)

		p := b.startWith(t, env, "run", "--concurrency", "2", "--chunk-size", "5")
		p.waitUntil(t, "deletions are recorded and a request hangs", func() bool {
			return b.gate.holding.Load() > 0 && b.countNow(deletedSQL) > 0
		})
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		require.Equal(t, -1, p.wait(t).code)
		b.waitQuiet(t)

		crashed := b.count(t, `SELECT id FROM retention.runs WHERE status = 'running'`)
		pending := b.strings(t, `SELECT character_id || '/' || session_id FROM retention.deletions WHERE status = 'pending'`)
		require.NotEmpty(t, pending, "the hanging request's sessions are pending")
		require.True(t, subset(b.recordedDeleted(t), b.fakeDeleted()), "recorded deleted only once confirmed")

		b.gate.release()
		r := run(t, env, "run", "--concurrency", "2", "--chunk-size", "5")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, fmt.Sprintf("runs found unfinished and marked interrupted: [%d]", crashed))
		require.Equal(t, []string{"interrupted"}, b.strings(t, `SELECT status FROM retention.runs WHERE id = $1`, crashed))
		require.Equal(t, pending, b.strings(t, `
			SELECT character_id || '/' || session_id FROM retention.deletions
			WHERE run_id = $1 AND status = 'failed' AND error LIKE 'the run ended before an answer was recorded%'`, crashed))
		// The hanging request never reached the fake, so its sessions went again, once.
		require.Equal(t, eligible, b.recordedDeleted(t))
		require.Equal(t, eligible, b.fakeDeleted())
		require.Zero(t, b.count(t, pendingSQL))
	})
}

// TestPoolerSchedule: "retention schedule" through the pooler runs on its ticks, waits while
// another session holds the run lock, and runs again once it is free.
func TestPoolerSchedule(t *testing.T) {
	t.Parallel()
	eachPoolerMode(t, func(t *testing.T, mode pgbouncertest.Mode) {
		b := setup(t)
		env := pooled(t, b, mode)
		eligible := b.seedWorld(t)
		s := startSchedule(t, env, "--cron", "@every 1s")
		s.waitUntil(t, "two runs succeeded", func() bool {
			return b.countNow(`SELECT count(*) FROM retention.runs WHERE status = 'succeeded'`) >= 2
		})
		b.requireSentOnce(t, eligible)

		lock := b.runLock(t)
		s.waitUntil(t, "the test holds the run lock", func() bool { return lock.try(t) })
		s.waitUntil(t, "a tick found the lock taken", func() bool {
			return s.metric(t, "convai_retention_schedule_skipped_ticks_total", "reason", "locked") >= 1
		})
		more := b.seed(t, "c-late", "old", 3, 31)
		lock.release(t)
		s.waitUntil(t, "the late sessions are deleted", func() bool {
			return b.countNow(`SELECT count(*) FROM retention.deletions WHERE character_id = 'c-late' AND status = 'deleted'`) == len(more)
		})
		require.Equal(t, exitcode.OK, s.stop(t, 0), "%s", s.stderr.String())
		all := append(append([]string{}, eligible...), more...)
		sort.Strings(all)
		b.requireSentOnce(t, all)
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status <> 'succeeded'`), "every run succeeded")
	})
}

// TestPoolerStatementModeIsRefused: a pooler in statement mode allows no transaction, which the
// run lock and migrate need: every command is refused at once with exit 2 (not exit 5, which a
// Job retries), saying which mode to use, and nothing is written.
func TestPoolerStatementModeIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	env := pooled(t, b, pgbouncertest.Statement)
	for _, args := range [][]string{{"migrate"}, {"run"}, {"run", "--dry-run"}, {"report"}} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
		require.Contains(t, r.stderr, "statement mode", "%v", args)
		require.Contains(t, r.stderr, "pool_mode = transaction or session", "%v", args)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`))
	require.Empty(t, b.gate.requested())
}
