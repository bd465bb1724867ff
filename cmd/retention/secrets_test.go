package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
)

const (
	secretKey      = "sk-test-SECRET-123456"
	secretPassword = "pw-SECRET-987654"
)

// requireNoSecret fails if any form of a secret is in s.
func requireNoSecret(t *testing.T, s, where string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec)} {
			require.NotContains(t, s, form, "%s shows a secret", where)
		}
	}
}

// withPassword returns dsn with the password pw. The test server trusts local connections, so
// any password connects.
func withPassword(t *testing.T, dsn, pw string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	// An API that echoes the key it was given in a 401, in the body and a header.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.Header.Get("CONVAI-API-KEY")
		w.Header().Set("X-Rejected-Key", k)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"ERROR": "Invalid API key provided: %s"}`, k)
	}))
	t.Cleanup(echo.Close)
	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(secretKey+"\n"), 0o600))

	tests := []struct {
		name    string
		fakeKey string // the key the fake accepts
		echo    bool   // send to the echoing API instead of the fake
		keyFile bool   // give the key in a file
		code    int
	}{
		{"key rejected", testKey, false, false, exitcode.KeyRejected},
		{"key rejected and echoed", testKey, true, false, exitcode.KeyRejected},
		{"key from file rejected and echoed", testKey, true, true, exitcode.KeyRejected},
		{"accepted, with retries", secretKey, false, false, exitcode.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.seedWorld(t)
			b.fake.Update(func(o *convaitest.Options) {
				o.APIKey = tt.fakeKey
				o.FailRate = 0.3 // answers that are retried, and logged at debug level
			})
			env := with(b.env, "DATABASE_URL", withPassword(t, b.db.URL, secretPassword), "CONVAI_API_KEY", secretKey)
			if tt.echo {
				env["CONVAI_API_URL"] = echo.URL
			}
			if tt.keyFile {
				env = with(env, "CONVAI_API_KEY", "", "CONVAI_API_KEY_FILE", keyFile)
			}
			r := run(t, env, "run", "--log-level", "debug", "--max-attempts", "20", "--chunk-size", "2")
			require.Equal(t, tt.code, r.code, "%s", r)
			require.NotEmpty(t, r.stderr, "the run logs")
			requireNoSecret(t, r.stdout, "stdout", secretKey, secretPassword)
			requireNoSecret(t, r.stderr, "stderr", secretKey, secretPassword)
			requireNoSecret(t, b.dump(t, "runs", "deletions"), "the database", secretKey, secretPassword)
			if tt.code == exitcode.OK {
				require.Contains(t, r.stderr, "retrying request", "debug logs were written")
			} else {
				require.Contains(t, r.stderr, "rejected the key")
			}
		})
	}
}

// TestSecretsInConfigErrors gives configurations that fail before any request, each carrying a
// secret where an error message could pick it up.
func TestSecretsInConfigErrors(t *testing.T) {
	t.Parallel()
	const odd = "p@ss:w/rd SECRET?&%"
	tests := []struct {
		name string
		env  map[string]string
		code int
	}{
		{"unreachable database", map[string]string{
			"DATABASE_URL": withPassword(t, closedURL(t, "retention"), secretPassword)}, exitcode.Fatal},
		{"unreachable database, odd password", map[string]string{
			"DATABASE_URL": withPassword(t, closedURL(t, "retention"), odd)}, exitcode.Fatal},
		{"invalid database URL", map[string]string{
			"DATABASE_URL": "postgres://retention:" + secretPassword + "@127.0.0.1:5432/app?sslmode=sometimes"}, exitcode.Usage},
		{"invalid keyword/value string", map[string]string{
			"DATABASE_URL": "host=127.0.0.1 password=" + secretPassword + " sslmode=sometimes"}, exitcode.Usage},
		{"key in the API URL", map[string]string{
			"DATABASE_URL":   closedURL(t, "retention"),
			"CONVAI_API_URL": "https://" + secretKey + "@api.convai.example"}, exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := with(tt.env, "CONVAI_API_KEY", secretKey)
			argsList := [][]string{{"run", "--log-level", "debug"}}
			if tt.env["CONVAI_API_URL"] == "" { // the API URL matters to a real run only
				argsList = append(argsList, []string{"run", "--dry-run"}, []string{"migrate"})
			}
			for _, args := range argsList {
				r := run(t, env, args...)
				require.Equal(t, tt.code, r.code, "%v: %s", args, r)
				require.NotEmpty(t, r.stderr)
				requireNoSecret(t, r.stdout+r.stderr, fmt.Sprint(args), secretPassword, odd, secretKey)
			}
		})
	}
}

// TestWrongSecretFileNotQuoted: DATABASE_URL_FILE (or DATABASE_URL) holding something other than
// a connection string, such as the API key or a signing key mounted by mistake, is refused with
// exit 2 and a message naming the file and the problem; no piece of the content shows, though
// pgx's own parse errors quote the string.
func TestWrongSecretFileNotQuoted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const signing = "AZx9Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz"
	for _, tt := range []struct{ name, content, secret, want string }{
		{"the API key", secretKey, secretKey, "neither a postgres:// URL nor keyword=value settings"},
		{"a signing key", "PRIVATE+KEY+retention+2f9c1a7e+" + signing, signing, "neither a postgres:// URL nor keyword=value settings"},
		{"a URL with a bad port", "postgres://retention:" + secretPassword + "@db:54x2/app", secretPassword, "a postgres:// URL that cannot be parsed"},
		{"a URL with a bad setting", "postgres://retention@db/app?sslmode=" + secretPassword, secretPassword, "a postgres:// URL that cannot be parsed"},
		{"keyword/value with a bad setting", "host=db connect_timeout=" + secretPassword, secretPassword, "keyword=value settings that cannot be parsed"},
		{"a bad pool setting", "postgres://retention@db/app?pool_max_conns=" + secretPassword, secretPassword, "a postgres:// URL that cannot be parsed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "dsn")
			require.NoError(t, os.WriteFile(f, []byte(tt.content+"\n"), 0o600))
			for _, env := range []map[string]string{
				with(b.env, "DATABASE_URL", "", "DATABASE_URL_FILE", f),
				with(b.env, "DATABASE_URL", tt.content),
			} {
				where := "DATABASE_URL: "
				if env["DATABASE_URL_FILE"] != "" {
					where = "DATABASE_URL_FILE: " + f + ": "
				}
				for _, args := range [][]string{{"run", "--dry-run"}, {"migrate"}, {"report"}} {
					r := run(t, env, args...)
					require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
					require.Contains(t, r.stderr, where+"not a valid PostgreSQL connection string ("+tt.want, "%v", args)
					requireNoSecretForm(t, r.stdout+r.stderr, "the output", tt.secret)
				}
			}
		})
	}
}
