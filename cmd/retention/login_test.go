package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// A login the server refuses (a role that does not exist, a wrong password) or a database that
// does not exist is the operator's configuration: exit 2 with a hint, which a Job does not
// retry, never exit 5; the password never shows.
func TestRefusedLoginIsAConfigurationError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)

	noRole := *u
	noRole.User = url.UserPassword("no_such_role_9f3a", "hunter2-secret-pass")
	r := run(t, with(b.env, "DATABASE_URL", noRole.String()), "run", "--dry-run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "the server refused the login")
	require.Contains(t, r.stderr, "check the user and password")
	require.NotContains(t, r.stdout+r.stderr, "hunter2-secret-pass")

	noDB := *u
	noDB.Path = "/no_such_database_9f3a"
	r = run(t, with(b.env, "DATABASE_URL", noDB.String()), "report")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "check the database name")
}

// A login that may not read the schema is told which role of sql/roles.sql to use: exit 2.
func TestLoginWithoutPrivilegesNamesTheRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	role := "no_grants_" + strings.ReplaceAll(strings.ToLower(rand.Text()[:8]), "-", "")
	b.exec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		_, _ = b.db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	r := run(t, with(b.env, "DATABASE_URL", u.String()), "run", "--dry-run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "permission denied")
	require.Contains(t, r.stderr, "connect as retention_job to run")
}
