// Package pgbouncertest starts a PgBouncer of a test's own in front of the test's PostgreSQL
// server, in the pooling mode the test asks for, so that the job can be run through a real
// connection pooler.
//
//	pool := pgbouncertest.Start(t, pgbouncertest.Transaction)
//	url := pool.URL(db.URL) // db.URL's database, through the pooler
//
// The binary is $PGBOUNCER, else pgbouncer on PATH, else Debian's /usr/sbin/pgbouncer;
// scripts/ensure-pgbouncer.sh installs it. A test that finds none fails, saying so; it never
// skips.
package pgbouncertest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/syncbuf"
)

// Mode is a PgBouncer pool_mode.
type Mode string

// The pooling modes: a server session per transaction, per client connection, or per statement
// (which allows no transaction at all).
const (
	Transaction Mode = "transaction"
	Session     Mode = "session"
	Statement   Mode = "statement"
)

// Pooler is a running pgbouncer, stopped when its test ends.
type Pooler struct {
	// Addr is host:port where it listens, on 127.0.0.1.
	Addr string
	Mode Mode
	cmd  *exec.Cmd
	log  syncbuf.Buffer
	done chan struct{}
}

// startTimeout bounds the wait for pgbouncer to listen.
const startTimeout = 30 * time.Second

// Start starts pgbouncer in mode in front of the server of TEST_DATABASE_URL, for any database
// on it. It logs in to the server as the user of TEST_DATABASE_URL (with its password, if it has
// one) and lets any client in as that user (auth_type = trust). It sets no
// ignore_startup_parameters: a client that sends a startup parameter PgBouncer does not know is
// refused, as in a default installation.
func Start(t testing.TB, mode Mode) *Pooler {
	t.Helper()
	bin := binary(t)
	server, err := pgconn.ParseConfig(os.Getenv(pgtest.EnvURL))
	if err != nil {
		t.Fatalf("pgbouncertest: %s: %v", pgtest.EnvURL, err)
	}
	dir, err := os.MkdirTemp("", "retention-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// As root, pgbouncer runs as nobody (it refuses to run as root), which must read these.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.txt")
	if err := os.WriteFile(users, []byte(quote(server.User)+" "+quote(server.Password)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port picked free may be taken before pgbouncer binds it: try another.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ini := filepath.Join(dir, "pgbouncer.ini")
		conf := strings.Join([]string{
			"[databases]",
			fmt.Sprintf("* = host=%s port=%d", server.Host, server.Port),
			"[pgbouncer]",
			"listen_addr = 127.0.0.1",
			"listen_port = " + strconv.Itoa(port),
			"unix_socket_dir =",
			"auth_type = trust",
			"auth_file = " + users,
			"pool_mode = " + string(mode),
			"max_client_conn = 500",
			"default_pool_size = 40",
			"logfile =",
			"pidfile =",
			"",
		}, "\n")
		if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &Pooler{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Mode: mode, done: make(chan struct{})}
		args := []string{ini}
		if os.Geteuid() == 0 {
			args = []string{"-u", "nobody", ini}
		}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("pgbouncertest: start %s: %v", bin, err)
		}
		go func() {
			_ = p.cmd.Wait()
			close(p.done)
		}()
		if lastErr = p.waitListening(); lastErr == nil {
			t.Cleanup(func() { p.stop(t) })
			return p
		}
		p.stop(t)
	}
	t.Fatalf("pgbouncertest: pgbouncer did not start: %v", lastErr)
	return nil
}

// URL returns dsn (a URL of a database on the test server) pointed at the pooler.
func (p *Pooler) URL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("pgbouncertest: not a URL: %v", err))
	}
	u.Host = p.Addr
	q := u.Query()
	q.Set("sslmode", "disable")
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	return u.String()
}

// Log returns what pgbouncer logged so far.
func (p *Pooler) Log() string { return p.log.String() }

var listening = regexp.MustCompile(`(?m)\blistening on 127\.0\.0\.1:\d+`)

// waitListening waits until pgbouncer says it listens and accepts a connection, or ends.
func (p *Pooler) waitListening() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("pgbouncer ended: %s\n%s", p.cmd.ProcessState, p.log.String())
		default:
		}
		if listening.MatchString(p.log.String()) {
			c, err := net.DialTimeout("tcp", p.Addr, time.Second)
			if err == nil {
				_ = c.Close()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pgbouncer did not listen on %s within %v\n%s", p.Addr, startTimeout, p.log.String())
}

// stop ends pgbouncer (SIGTERM: at once, closing every connection), or kills it.
func (p *Pooler) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if t.Failed() {
		t.Logf("pgbouncer (%s mode) logged:\n%s", p.Mode, tail(p.log.String(), 40))
	}
}

// binary returns the pgbouncer to run, or fails t saying how to get one.
func binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("PGBOUNCER"); b != "" {
		return b
	}
	if b, err := exec.LookPath("pgbouncer"); err == nil {
		return b
	} else if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("pgbouncertest: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer"
	}
	t.Fatal("pgbouncertest: pgbouncer not found: run scripts/ensure-pgbouncer.sh (Debian/Ubuntu: " +
		"apt-get install pgbouncer), or set PGBOUNCER=/path/to/pgbouncer")
	return ""
}

// freePort returns a port of 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// quote quotes s for pgbouncer's auth_file.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
