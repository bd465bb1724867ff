package pgtest

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConnectAdminExplainsHowToGetAServer(t *testing.T) {
	t.Parallel()

	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "postgres://postgres:secret@" + l.Addr().String() + "/postgres?sslmode=disable"
	require.NoError(t, l.Close())

	for name, raw := range map[string]string{
		"unset":       "",
		"closed port": closed,
		"garbage":     "postgres://%zz",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, err := connectAdmin(context.Background(), raw)
			require.Nil(t, pool)
			require.Error(t, err)
			require.Contains(t, err.Error(), "run `make test` (it starts a throwaway PostgreSQL), or set TEST_DATABASE_URL=postgres://user@host:port/db")
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://u@h:1/postgres?sslmode=disable": "postgres://u@h:1/other?sslmode=disable",
		"postgresql://u@h:1":                        "postgresql://u@h:1/other",
		"host=h port=1 dbname=postgres":             "host=h port=1 dbname=postgres dbname=other",
	} {
		got, err := withDatabase(raw, "other")
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func TestDBNameIsAValidIdentifier(t *testing.T) {
	t.Parallel()
	a := dbName("TestSomething/with spaces and a very long subtest name that goes on and on")
	b := dbName("TestSomething/with spaces and a very long subtest name that goes on and on")
	require.NotEqual(t, a, b)
	require.LessOrEqual(t, len(a), 63, "PostgreSQL truncates identifiers past 63 bytes")
	require.Equal(t, strings.ToLower(a), a)
	require.Regexp(t, `^retention_test_[a-z0-9_]+_[0-9a-f]{12}$`, a)
}

func TestTemplateNameIsStable(t *testing.T) {
	t.Parallel()
	a, err := templateName()
	require.NoError(t, err)
	b, err := templateName()
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Regexp(t, `^retention_tpl_[0-9a-f]{16}$`, a)
}
