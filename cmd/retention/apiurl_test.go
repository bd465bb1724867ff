package main

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// TestInsecureAPIURLRefused: a plain http:// CONVAI_API_URL to a host other than this machine
// would send the API key unencrypted. Every command that calls the API refuses it with exit 2
// before it connects anywhere, unless --allow-insecure-url is given.
func TestInsecureAPIURLRefused(t *testing.T) {
	t.Parallel()
	env := offline(t)
	for _, u := range []string{"http://api.convai.example", "HTTP://api.convai.example/v1", "http://10.1.2.3:8089",
		"http://[2001:db8::1]:80/", "http://0.0.0.0:8089", "http://127.0.0.1.example.com"} {
		for _, args := range [][]string{{"run"}, {"verify"}, {"discover"}, {"schedule", "--cron", "0 3 * * *"}} {
			t.Run(u+"/"+args[0], func(t *testing.T) {
				t.Parallel()
				r := run(t, with(env, "CONVAI_API_URL", u), args...)
				require.Equal(t, exitcode.Usage, r.code, "%s", r)
				require.Contains(t, r.stderr, "CONVAI_API_URL", "%s", r)
				require.Contains(t, r.stderr, "--allow-insecure-url", "%s", r)
				require.NotContains(t, r.stderr, "connect to database", "refused before anything else: %s", r)
			})
		}
	}
}

// TestInsecureAPIURLAllowed: with --allow-insecure-url (or RETENTION_ALLOW_INSECURE_URL) the run
// goes on, with a loud warning; loopback and https:// need no flag and get no warning.
func TestInsecureAPIURLAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	l, err := net.Listen("tcp", "0.0.0.0:0") // this machine, but not a loopback address
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(b.gate)
	require.NoError(t, srv.Listener.Close())
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	u := "http://" + l.Addr().String()

	r := run(t, with(b.env, "CONVAI_API_URL", u), "run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)

	r = run(t, with(b.env, "CONVAI_API_URL", u), "run", "--allow-insecure-url")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stderr, "INSECURE API CONNECTION")
	require.NotZero(t, b.fake.DeletedCount())

	// verify's outcome is not the point (the stand-in's lists are empty): that it starts is.
	r = run(t, with(b.env, "CONVAI_API_URL", u, "RETENTION_ALLOW_INSECURE_URL", "true"), "verify")
	require.NotEqual(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "INSECURE API CONNECTION")
	require.Contains(t, r.stderr, "verify started")

	for _, loop := range []string{b.srv.URL, strings.Replace(b.srv.URL, "127.0.0.1", "localhost", 1)} {
		r = run(t, with(b.env, "CONVAI_API_URL", loop), "verify")
		require.NotEqual(t, exitcode.Usage, r.code, "%s", r)
		require.Contains(t, r.stderr, "verify started")
		require.NotContains(t, r.stderr, "INSECURE API CONNECTION")
	}
}
