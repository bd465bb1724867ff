package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// requireNoSecretForm fails if s shows any 8 bytes in a row of a secret, of its URL escapings
// (every byte %-encoded too) or of its base64 encodings (after a prefix too), or any 8 bytes in
// a row in hex, in any letter case. It is written apart from internal/secret.
func requireNoSecretForm(t *testing.T, s, where string, secrets ...string) {
	t.Helper()
	low := strings.ToLower(s)
	for _, sec := range secrets {
		forms := []string{sec, url.QueryEscape(sec), url.PathEscape(sec), percentAll(sec),
			base64.StdEncoding.EncodeToString([]byte(sec)), base64.RawURLEncoding.EncodeToString([]byte(sec))}
		for skip := 1; skip <= 2; skip++ { // base64 of the secret after a prefix, as in apikey:KEY
			part := []byte(sec[skip : skip+(len(sec)-skip)/3*3])
			forms = append(forms, base64.StdEncoding.EncodeToString(part), base64.RawURLEncoding.EncodeToString(part))
		}
		for _, f := range forms {
			f = strings.ToLower(f)
			for i := 0; i+8 <= len(f); i++ {
				require.NotContains(t, low, f[i:i+8], "%s shows a piece of a secret", where)
			}
		}
		// Hex by 8 bytes of the secret: shorter pieces could be found in any hash by chance.
		h := hex.EncodeToString([]byte(sec))
		for i := 0; i+16 <= len(h); i += 2 {
			require.NotContains(t, low, h[i:i+16], "%s shows a piece of a secret in hex", where)
		}
	}
}

// percentAll %-encodes every byte of s.
func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// runWithin runs the program in-process and fails if it does not end within d (a secret file
// that blocks, say).
func runWithin(t *testing.T, d time.Duration, env map[string]string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- run(t, env, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("retention %v did not end within %s", args, d)
		return result{}
	}
}

// TestKeyInAPIURLPathNotStored: a key pasted into the path of CONVAI_API_URL (a proxy that
// takes it there) must reach neither the run row nor the logs nor the output.
func TestKeyInAPIURLPathNotStored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	proxy := httptest.NewServer(http.StripPrefix("/v1/"+secretKey, b.gate))
	t.Cleanup(proxy.Close)
	r := run(t, with(b.env, "CONVAI_API_URL", proxy.URL+"/v1/"+secretKey), "run", "--log-level", "debug")
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	var apiURL string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT settings->>'api_url' FROM retention.runs`).Scan(&apiURL))
	require.Equal(t, proxy.URL+"/…", apiURL, "scheme, host and port, and a sign that a path was left out")
	requireNoSecretForm(t, b.dump(t, "runs", "deletions"), "the database", secretKey)
	requireNoSecretForm(t, r.stdout+r.stderr, "the output", secretKey)
}

// TestEchoedSecretTransformedStaysOut: an endpoint that echoes the key lower-cased, upper-cased,
// base64- (alone or as apikey:KEY), hex-, URL- or fully %-encoded, or a piece of it, and the
// database password, in its refusals. None of it reaches the database (where it would be sealed
// for ever), the logs or the output: only the status and a description of the body are stored.
func TestEchoedSecretTransformedStaysOut(t *testing.T) {
	t.Parallel()
	const key = "sk-live-Q7w8E9r0T1y2U3i4"
	const password = "Pa55-word-987654"
	for name, echo := range map[string]func(string) string{
		"lower case": strings.ToLower,
		"upper case": strings.ToUpper,
		"base64":     func(k string) string { return base64.StdEncoding.EncodeToString([]byte(k)) },
		"url-encoded, in a URL": func(k string) string {
			return "https://api.example/?k=" + url.QueryEscape(k) + "&p=" + url.QueryEscape(password)
		},
		"a piece": func(k string) string { return "..." + k[4:16] + "..." },
		"hex":     func(k string) string { return hex.EncodeToString([]byte(k)) },
		"base64 of apikey:KEY": func(k string) string {
			return base64.StdEncoding.EncodeToString([]byte("apikey:" + k))
		},
		"every byte %-encoded": percentAll,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.seedWorld(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"ERROR": "bad request for key %s (password %s)"}`, echo(r.Header.Get("CONVAI-API-KEY")), strings.ToLower(password))
			}))
			t.Cleanup(srv.Close)
			env := with(b.env, "CONVAI_API_KEY", key, "CONVAI_API_URL", srv.URL,
				"DATABASE_URL", withPassword(t, b.db.URL, password))
			r := run(t, env, "run", "--log-level", "debug", "--chunk-size", "2")
			// Every request is refused: after three chunks refused at every ID the run stops.
			require.Equal(t, exitcode.Fatal, r.code, "%s", r)
			require.Contains(t, r.stderr, "refuses the requests")
			errs := b.strings(t, `SELECT DISTINCT error FROM retention.deletions WHERE error LIKE 'rejected with HTTP%'`)
			require.NotEmpty(t, errs)
			for _, e := range errs {
				require.Contains(t, e, "status 400: JSON body without a known message", "the status is kept, no text of the body")
				require.NotContains(t, e, "bad request for key")
				require.LessOrEqual(t, len(e), 320)
			}
			requireNoSecretForm(t, b.dump(t, "runs", "deletions"), "the database", key, password)
			requireNoSecretForm(t, r.stdout+r.stderr, "the output", key, password)
		})
	}
}

// TestSecretFilesReadWithLimits: a key or database URL file that is not a small regular file
// is refused with exit 2 and a clear message, at once; a dry-run never reads the key file.
func TestSecretFilesReadWithLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 1<<20), 0o600))
	dsnFile := filepath.Join(dir, "dsn")
	require.NoError(t, os.WriteFile(dsnFile, []byte(b.db.URL+"\n"), 0o600))

	for _, tt := range []struct{ name, file, want string }{
		{"a FIFO", fifo, "not a regular file (a FIFO)"},
		{"/dev/zero", "/dev/zero", "not a regular file (a character device)"},
		{"a directory", dir, "not a regular file (a directory)"},
		{"a big file", big, "larger than 4096 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := with(b.env, "CONVAI_API_KEY", "", "CONVAI_API_KEY_FILE", tt.file)
			r := runWithin(t, 10*time.Second, env, "run")
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, "CONVAI_API_KEY_FILE: "+tt.file+": "+tt.want)

			// A dry-run needs no key and does not read the file at all.
			r = runWithin(t, 10*time.Second, env, "run", "--dry-run")
			require.Equal(t, exitcode.OK, r.code, "%s", r)

			env = with(b.env, "DATABASE_URL", "", "DATABASE_URL_FILE", tt.file)
			for _, args := range [][]string{{"run", "--dry-run"}, {"migrate"}, {"report"}} {
				r = runWithin(t, 10*time.Second, env, args...)
				require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
				require.Contains(t, r.stderr, "DATABASE_URL_FILE: "+tt.file+": "+tt.want)
			}
		})
	}

	t.Run("DATABASE_URL_FILE", func(t *testing.T) {
		t.Parallel()
		env := with(b.env, "DATABASE_URL", "", "DATABASE_URL_FILE", dsnFile)
		r := run(t, env, "run", "--dry-run")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, "dry-run: nothing was sent")

		r = run(t, with(env, "DATABASE_URL", b.db.URL), "run", "--dry-run")
		require.Equal(t, exitcode.Usage, r.code, "%s", r)
		require.Contains(t, r.stderr, "both DATABASE_URL and DATABASE_URL_FILE are set")
	})

	t.Run("the password of DATABASE_URL_FILE stays out", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "dsn")
		require.NoError(t, os.WriteFile(f, []byte(withPassword(t, closedURL(t, "retention"), secretPassword)), 0o600))
		r := run(t, with(b.env, "DATABASE_URL", "", "DATABASE_URL_FILE", f), "run", "--log-level", "debug")
		require.Equal(t, exitcode.Fatal, r.code, "%s", r)
		require.Contains(t, r.stderr, "connect to database")
		requireNoSecretForm(t, r.stdout+r.stderr, "the output", secretPassword)
	})
}

// TestDryRunSaysNothingNotSent: a dry-run sends nothing by design and must not say that
// sessions "were not sent".
func TestDryRunSaysNothingNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	r := b.run(t, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, fmt.Sprintf("Would delete %d sessions", len(eligible)))
	require.NotContains(t, r.stdout, "not sent")
	r = b.run(t, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var sum struct {
		NotSent  *int64 `json:"not_sent"`
		Selected int64  `json:"selected"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum))
	require.EqualValues(t, len(eligible), sum.Selected)
	require.NotNil(t, sum.NotSent)
	require.Zero(t, *sum.NotSent)
}

// TestNumbersInTheDocumentedForm: numbers from the environment are held to the same form as
// flags, and neither takes hexadecimal, octal, underscores, exponents, NaN or Inf.
func TestNumbersInTheDocumentedForm(t *testing.T) {
	t.Parallel()
	env := offline(t)
	for _, tt := range []struct{ name, value, want string }{
		{"RETENTION_RATE", "-1", "invalid --rate -1"},
		{"RETENTION_CONCURRENCY", "0x10", `invalid RETENTION_CONCURRENCY="0x10" (for --concurrency): want a whole number in decimal digits`},
		{"RETENTION_CHUNK_SIZE", "0o20", "RETENTION_CHUNK_SIZE"},
		{"RETENTION_CHUNK_SIZE", "1_000", "RETENTION_CHUNK_SIZE"},
		{"RETENTION_MAX_DELETIONS", "0b101", "RETENTION_MAX_DELETIONS"},
		{"RETENTION_RATE", "1e3", `invalid RETENTION_RATE="1e3" (for --rate): want a decimal number`},
		{"RETENTION_RATE", "0x1p4", "RETENTION_RATE"},
		{"RETENTION_RATE", "NaN", "RETENTION_RATE"},
		{"RETENTION_RATE", "Inf", "RETENTION_RATE"},
	} {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			r := run(t, with(env, tt.name, tt.value), "run", "--dry-run")
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, tt.want)
			require.NotContains(t, r.stderr, "connect to database", "refused before connecting")

			flagName := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(tt.name, "RETENTION_")), "_", "-")
			r = run(t, env, "run", "--dry-run", "--"+flagName+"="+tt.value)
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, flagName)
		})
	}
	// The documented forms still work (the database is unreachable: exit 5 means accepted).
	for _, kv := range [][2]string{{"RETENTION_RATE", "2.5"}, {"RETENTION_RATE", "0"}, {"RETENTION_CONCURRENCY", "16"}, {"RETENTION_CHUNK_SIZE", "+50"}} {
		r := run(t, with(env, kv[0], kv[1]), "run", "--dry-run")
		require.Equal(t, exitcode.Fatal, r.code, "%s=%s: %s", kv[0], kv[1], r)
		require.Contains(t, r.stderr, "connect to database")
	}
}

// TestInsecureDatabaseConnectionWarned: a database on another machine reached with sslmode
// disable, allow or prefer (the default) is warned about at start; loopback, Unix sockets and
// verify-full are not.
func TestInsecureDatabaseConnectionWarned(t *testing.T) {
	t.Parallel()
	const warning = "INSECURE DATABASE CONNECTION"
	// 192.0.2.1 is TEST-NET-1: never routed, so the connection fails after connect_timeout.
	remote := "postgres://retention:" + secretPassword + "@192.0.2.1:5432/app?connect_timeout=1"
	for _, tt := range []struct {
		dsn  string
		warn bool
	}{
		{remote, true},
		{remote + "&sslmode=prefer", true},
		{remote + "&sslmode=allow", true},
		{remote + "&sslmode=disable", true},
		{"host=192.0.2.1 user=retention sslmode=disable connect_timeout=1", true},
		{remote + "&sslmode=verify-full", false},
		{closedURL(t, "retention"), false}, // 127.0.0.1, sslmode=disable
		{"postgres://retention@localhost:1/app?sslmode=disable&connect_timeout=1", false},
	} {
		for _, args := range [][]string{{"run", "--dry-run"}, {"migrate"}} {
			r := runWithin(t, 30*time.Second, map[string]string{"DATABASE_URL": tt.dsn}, args...)
			require.Equal(t, exitcode.Fatal, r.code, "%s %v: %s", tt.dsn, args, r)
			require.Equal(t, tt.warn, strings.Contains(r.stderr, warning), "%s %v: %s", tt.dsn, args, r)
			if tt.warn {
				require.Contains(t, r.stderr, "sslmode=verify-full")
			}
			requireNoSecretForm(t, r.stderr, "the output", secretPassword)
		}
	}
	require.Contains(t, helpText(), "verify-full", "retention help says it too")
	require.Contains(t, helpText(), "DATABASE_URL_FILE")
}

// TestLockedRunSaysWhoHoldsTheLock: any role that can connect can take the run lock; a run that
// finds it taken says who holds it, so an operator can act.
func TestLockedRunSaysWhoHoldsTheLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(b.db.URL)
	require.NoError(t, err)
	cfg.RuntimeParams["application_name"] = "squatter-app"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	var pid int
	var user string
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid(), current_user").Scan(&pid, &user))
	_, err = conn.Exec(ctx, "SELECT pg_advisory_lock(1380275269, 65536)")
	require.NoError(t, err)

	r := b.run(t, "run")
	require.Equal(t, exitcode.Locked, r.code, "%s", r)
	for _, want := range []string{
		"another retention run holds the lock",
		fmt.Sprintf("pid %d", pid),
		fmt.Sprintf("user %q", user),
		`application "squatter-app"`,
		"client \"127.0.0.1:",
		"connected since " + time.Now().UTC().Format("2006-01-02"),
		fmt.Sprintf("pg_terminate_backend(%d)", pid),
	} {
		require.Contains(t, r.stderr, want)
	}
	require.Empty(t, b.gate.requested(), "nothing was sent")
}

// TestConnectionsHaveKeepalives: the job's connections make the server probe them (so a pod
// that vanishes while holding the run lock loses it within about two minutes) and probe the
// server themselves.
func TestConnectionsHaveKeepalives(t *testing.T) {
	t.Parallel()
	db := setup(t).db
	ctx := context.Background()
	pool, err := connect(ctx, db.URL, 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()

	got := map[string]string{}
	rows, err := c.Query(ctx, `SELECT name, setting FROM pg_settings WHERE name IN
		('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')`)
	require.NoError(t, err)
	for rows.Next() {
		var k, v string
		require.NoError(t, rows.Scan(&k, &v))
		got[k] = v
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10",
		"tcp_keepalives_count": "6", "tcp_user_timeout": "90000"}, got, "the server side, in seconds and ms")
	idle, interval, count := 30, 10, 6
	require.LessOrEqual(t, idle+interval*count, 120, "a silent peer is dropped within two minutes")

	tcp, ok := c.Conn().PgConn().Conn().(*net.TCPConn)
	require.True(t, ok, "the test server is reached over TCP")
	raw, err := tcp.SyscallConn()
	require.NoError(t, err)
	opts := map[string]int{}
	require.NoError(t, raw.Control(func(fd uintptr) {
		for name, o := range map[string][2]int{
			"SO_KEEPALIVE":     {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE},
			"TCP_KEEPIDLE":     {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE},
			"TCP_KEEPINTVL":    {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL},
			"TCP_KEEPCNT":      {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT},
			"TCP_USER_TIMEOUT": {syscall.IPPROTO_TCP, sockoptTCPUserTimeout},
		} {
			v, err := syscall.GetsockoptInt(int(fd), o[0], o[1])
			require.NoError(t, err, name)
			opts[name] = v
		}
	}))
	require.Equal(t, map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 6,
		"TCP_USER_TIMEOUT": 90000}, opts, "the job's side")
}
