package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/syncbuf"
)

// bins builds the binaries once per test binary, for the tests that run them as processes.
var bins struct {
	dir       string
	dirErr    error
	dirOnce   sync.Once
	retention builtBinary
	fake      builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// binary builds the main package pkg (relative to this directory) as name, once, and returns
// its path.
func binary(t *testing.T, b *builtBinary, pkg, name string) string {
	t.Helper()
	bins.dirOnce.Do(func() { bins.dir, bins.dirErr = os.MkdirTemp("", "retention-test-bin-") })
	require.NoError(t, bins.dirErr)
	b.once.Do(func() {
		b.path = filepath.Join(bins.dir, name)
		out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// removeBinaries removes what binary built; TestMain calls it.
func removeBinaries() {
	if bins.dir != "" {
		_ = os.RemoveAll(bins.dir)
	}
}

// proc is a binary running as a child process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr syncbuf.Buffer
	done           chan struct{}
}

// start runs the retention binary with the bundle's environment and nothing else.
func (b *bundle) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return b.startWith(t, b.env, args...)
}

// startWith runs the binary with vars as its whole environment.
func (b *bundle) startWith(t *testing.T, vars map[string]string, args ...string) *proc {
	t.Helper()
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return startProcess(t, binary(t, &bins.retention, ".", "retention"), env, args...)
}

// startProcess runs path with args and env as its whole environment, and kills it if it is
// still running when the test ends.
func startProcess(t *testing.T, path string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to end and returns what it did; a process killed by a signal
// has code -1.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the process did not end\nstdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
	}
	return result{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// waitUntil polls cond until it holds; it fails if the process ends first.
func (p *proc) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("the process ended before %s\n%s", what, p.wait(t))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s\nstderr:\n%s", what, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countNow is count without failing the test, for polling.
func (b *bundle) countNow(sql string) int {
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		return -1
	}
	return n
}

const (
	deletedSQL = `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`
	pendingSQL = `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`
)

// seedBulk adds a default policy and chars×n expired sessions, and returns them sorted.
func (b *bundle) seedBulk(t *testing.T, chars, n int) []string {
	t.Helper()
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')
		ON CONFLICT DO NOTHING`)
	var all []string
	for c := range chars {
		all = append(all, b.seed(t, fmt.Sprintf("bulk-%02d", c), "s", n, 60)...)
	}
	sort.Strings(all)
	return all
}

// fakeProcess is cmd/convai-fake running as a child process, accepting testKey.
type fakeProcess struct {
	*proc
	url string
}

func startFake(t *testing.T, args ...string) *fakeProcess {
	t.Helper()
	p := startProcess(t, binary(t, &bins.fake, "../convai-fake", "convai-fake"), []string{"CONVAI_API_KEY=" + testKey},
		append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	listening := regexp.MustCompile(`convai-fake listening on (http://\S+)`)
	p.waitUntil(t, "convai-fake listens", func() bool { return listening.MatchString(p.stdout.String()) })
	return &fakeProcess{proc: p, url: listening.FindStringSubmatch(p.stdout.String())[1]}
}

// deleted returns "character/session" of everything the fake deleted, from GET /_fake/deleted.
func (f *fakeProcess) deleted(t *testing.T) []string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get(f.url + "/_fake/deleted")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var report struct {
		Deleted map[string][]string `json:"deleted"`
		Total   int                 `json:"total"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&report))
	out := []string{}
	for c, ids := range report.Deleted {
		for _, id := range ids {
			out = append(out, c+"/"+id)
		}
	}
	sort.Strings(out)
	require.Len(t, out, report.Total)
	return out
}

// requireInterruptedCleanly checks the state a signalled run leaves: the run interrupted,
// nothing pending, and the sessions recorded deleted exactly those the fake deleted.
func (b *bundle) requireInterruptedCleanly(t *testing.T, all, atFake []string) {
	t.Helper()
	require.Equal(t, []string{"interrupted"}, b.strings(t, `SELECT status FROM retention.runs`))
	require.Zero(t, b.count(t, pendingSQL), "nothing left pending")
	deleted := b.recordedDeleted(t)
	require.NotEmpty(t, deleted)
	require.Less(t, len(deleted), len(all), "the run stopped early")
	require.Equal(t, atFake, deleted, "recorded deleted = deleted at the fake")
}

func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.seedBulk(t, 20, 100)
	fake := startFake(t, "--latency", "300ms")

	p := b.startWith(t, with(b.env, "CONVAI_API_URL", fake.url), "run", "--concurrency", "2", "--chunk-size", "20")
	p.waitUntil(t, "some deletions are recorded", func() bool { return b.countNow(deletedSQL) > 0 })
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	r := p.wait(t)

	require.Equal(t, exitcode.Terminated, r.code, "%s", r)
	require.Regexp(t, `^run \d+ interrupted: `, r.stdout)
	b.requireInterruptedCleanly(t, all, fake.deleted(t))
	// The grace (20s by default) let the requests in flight finish: nothing failed.
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'failed'`))
	require.Equal(t, []string{"received terminated"}, b.strings(t, `SELECT error FROM retention.runs`))
}

func TestSIGINTCancelsAfterGrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.seedBulk(t, 10, 40)
	b.gate.hangAfter(2) // the first two requests are answered; the rest hang

	p := b.start(t, "run", "--concurrency", "2", "--chunk-size", "20", "--shutdown-grace", "100ms")
	p.waitUntil(t, "deletions are recorded and a request hangs", func() bool {
		return b.gate.holding.Load() > 0 && b.countNow(deletedSQL) > 0
	})
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	r := p.wait(t)

	require.Equal(t, exitcode.Interrupted, r.code, "%s", r)
	b.requireInterruptedCleanly(t, all, b.fakeDeleted())
	sent := b.gate.requested()
	require.True(t, unique(sent), "no session sent twice")
	require.True(t, subset(sent, all))
	// The hung requests were cancelled after the grace and recorded failed, saying why.
	require.Equal(t, []string{"no confirmation before the run was cancelled"},
		compact(b.strings(t, `SELECT error FROM retention.deletions WHERE status = 'failed'`)))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'failed'
		AND (character_id || '/' || session_id) IN (SELECT unnest($1::text[]))`, b.fakeDeleted()))
}

func compact(ss []string) []string {
	out := []string{}
	for _, s := range ss {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func TestCrashThenRecover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := append(b.seedWorld(t), b.seedBulk(t, 10, 20)...)
	sort.Strings(eligible)
	b.gate.hangAfter(3)

	p := b.start(t, "run", "--concurrency", "2", "--chunk-size", "10")
	p.waitUntil(t, "deletions are recorded and a request hangs", func() bool {
		return b.gate.holding.Load() > 0 && b.countNow(deletedSQL) > 0
	})
	require.NoError(t, p.cmd.Process.Kill())
	require.Equal(t, -1, p.wait(t).code)
	// A statement the process sent just before it died still commits: wait for its database
	// sessions to end, which also releases its run lock.
	deadline := time.Now().Add(time.Minute)
	for b.countNow(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'convai-retention'`) != 0 {
		require.True(t, time.Now().Before(deadline), "the dead process's database sessions stay")
		time.Sleep(10 * time.Millisecond)
	}

	// The dead run is left as it was.
	var crashed int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT id FROM retention.runs WHERE status = 'running'`).Scan(&crashed))
	pending := b.strings(t, `SELECT character_id || '/' || session_id FROM retention.deletions WHERE status = 'pending'`)
	require.NotEmpty(t, pending)
	require.True(t, subset(b.recordedDeleted(t), b.fakeDeleted()), "recorded deleted only once confirmed")

	b.gate.release()
	r := b.start(t, "run", "--concurrency", "2", "--chunk-size", "10").wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, fmt.Sprintf("runs found unfinished and marked interrupted: [%d]", crashed))

	require.Equal(t, []string{"interrupted"}, b.strings(t, `SELECT status FROM retention.runs WHERE id = $1`, crashed))
	require.Equal(t, pending, b.strings(t, `
		SELECT character_id || '/' || session_id FROM retention.deletions
		WHERE run_id = $1 AND status = 'failed' AND error LIKE 'the run ended before an answer was recorded%'`, crashed),
		"the dead run's pending sessions became failed")
	require.Zero(t, b.count(t, pendingSQL))
	require.Zero(t, b.count(t, `SELECT count(*) FROM (
		SELECT character_id, session_id, count(*) FROM retention.deletions WHERE status = 'deleted'
		GROUP BY 1, 2 HAVING count(*) <> 1) x`), "each session deleted once")
	require.Equal(t, eligible, b.recordedDeleted(t), "every eligible session deleted")
	require.Equal(t, eligible, b.fakeDeleted())
	require.True(t, subset(b.gate.requested(), eligible), "nothing held, unexpired or disabled was ever sent")
}
