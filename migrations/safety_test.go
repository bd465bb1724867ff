package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

// A max_age under one hour is refused, saying why: '30' is 30 seconds to PostgreSQL.
func TestPolicyMaxAgeAtLeastOneHour(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	for _, age := range []string{"30", "1 microsecond", "59 minutes 59.999999 seconds", "00:30:00"} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c', $1)`, age)
		require.ErrorContains(t, err, "is under one hour: a bare number is seconds in PostgreSQL", age)
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c', '1 hour'), (NULL, '30 days')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE retention.policies SET max_age = '30' WHERE character_id IS NULL`)
	require.ErrorContains(t, err, `max_age '00:00:30' is under one hour`)

	// With the trigger off, the CHECK still holds the rule.
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // the test's own transaction
	_, err = tx.Exec(ctx, `ALTER TABLE retention.policies DISABLE TRIGGER policies_max_age_floor`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE retention.policies SET max_age = '1 second'`)
	require.ErrorContains(t, err, "policies_max_age_at_least_one_hour")

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM retention.policies WHERE max_age < '1 hour'`).Scan(&n))
	require.Zero(t, n)
}

// A database holding a policy under one hour is not migrated: the operator is told which.
func TestMigrationRefusesShortPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA retention")
	require.NoError(t, err)
	m, err := migrate.NewMigrator(ctx, conn, migrations.VersionTable)
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(migrations.FS()))
	require.NoError(t, m.MigrateTo(ctx, 5))
	_, err = conn.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30'), ('ok', '7 days')`)
	require.NoError(t, err)

	_, _, err = migrations.Migrate(ctx, conn)
	require.ErrorContains(t, err, "max_age values under one hour: policy 1 (the default): max_age '00:00:30'")
	v, err := m.GetCurrentVersion(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, v, "nothing of 006 applied")

	_, err = conn.Exec(ctx, `UPDATE retention.policies SET max_age = '30 days' WHERE character_id IS NULL`)
	require.NoError(t, err)
	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)

	// The policies in force when the history began are its baseline.
	var baseline string
	require.NoError(t, conn.QueryRow(ctx, `SELECT string_agg(op || ' ' || policy_id || ' ' || new_max_age::text, ', ' ORDER BY id)
		FROM retention.policy_history`).Scan(&baseline))
	require.Equal(t, "baseline 1 30 days, baseline 2 7 days", baseline)
}

// Every change of a policy is in its history, by plain SQL too, with who, when and why; the
// history cannot be changed; policies_as_of gives the policies in force at any instant.
func TestPolicyHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	instant := func() time.Time {
		t.Helper()
		var at time.Time
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&at))
		return at
	}
	asOf := func(at time.Time) string {
		t.Helper()
		var s *string
		require.NoError(t, db.Pool.QueryRow(ctx, `
			SELECT string_agg(coalesce(character_id, '(default)') || '=' || max_age::text || CASE WHEN enabled THEN '' ELSE ' off' END, ', ')
			FROM retention.policies_as_of($1)`, at).Scan(&s))
		if s == nil {
			return ""
		}
		return *s
	}

	t0 := instant()
	exec(`INSERT INTO retention.policies (character_id, max_age, note) VALUES (NULL, '30 days', 'privacy policy 4'), ('kids', '7 days', '')`)
	t1 := instant()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	for _, sql := range []string{
		`SET LOCAL retention.actor = 'alice@example.com'`,
		`SET LOCAL retention.reason = 'ticket 42: kids keep 14 days'`,
		`UPDATE retention.policies SET max_age = '14 days' WHERE character_id = 'kids'`,
		`UPDATE retention.policies SET note = note WHERE character_id IS NULL`, // changes nothing
	} {
		_, err := tx.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	require.NoError(t, tx.Commit(ctx))
	t2 := instant()
	exec(`DELETE FROM retention.policies WHERE character_id = 'kids'`)
	exec(`UPDATE retention.policies SET enabled = false WHERE character_id IS NULL`)
	t3 := instant()

	rows, err := db.Pool.Query(ctx, `
		SELECT op || ' ' || coalesce(coalesce(new_character_id, old_character_id), '(default)') || ' '
		       || coalesce(old_max_age::text, '-') || ' -> ' || coalesce(new_max_age::text, '-')
		       || ' by ' || changed_by || ' actor ' || coalesce(actor, '-') || ' why ' || coalesce(reason, '-')
		FROM retention.policy_history ORDER BY id`)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	var user string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, []string{
		"insert (default) - -> 30 days by " + user + " actor - why privacy policy 4",
		"insert kids - -> 7 days by " + user + " actor - why -",
		"update kids 7 days -> 14 days by " + user + " actor alice@example.com why ticket 42: kids keep 14 days",
		"delete kids 14 days -> - by " + user + " actor - why -",
		"update (default) 30 days -> 30 days by " + user + " actor - why privacy policy 4",
	}, lines)

	require.Empty(t, asOf(t0))
	require.Equal(t, "(default)=30 days, kids=7 days", asOf(t1))
	require.Equal(t, "(default)=30 days, kids=14 days", asOf(t2))
	require.Equal(t, "(default)=30 days off", asOf(t3))

	for _, sql := range []string{
		`UPDATE retention.policy_history SET actor = 'mallory'`,
		`DELETE FROM retention.policy_history`,
		`TRUNCATE retention.policy_history`,
		`TRUNCATE retention.policies`,
	} {
		_, err := db.Pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
}
