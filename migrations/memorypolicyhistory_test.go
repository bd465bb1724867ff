package migrations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

// A database that set memory_max_age before 017 (with plain SQL, which the history did not see)
// gets a baseline row for each policy that sets one; policies_as_of shows memory_max_age from
// then on; a later change of memory_max_age alone is a version with the old and the new value.
// policies_as_of, made again by 017, keeps the grants it had: EXECUTE revoked from PUBLIC and
// granted to a reader, as sql/roles.sql leaves it.
func TestMemoryMaxAgeHistoryFrom017(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	exec(`CREATE SCHEMA retention`)
	m, err := migrate.NewMigrator(ctx, conn, migrations.VersionTable)
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(migrations.FS()))
	require.NoError(t, m.MigrateTo(ctx, 16))

	exec(`INSERT INTO retention.policies (character_id, max_age, memory_max_age, note) VALUES
		(NULL, '30 days', '90 days', 'default'), ('kids', '7 days', NULL, ''), ('legal', '1 year', '1 year', '')`)
	exec(`UPDATE retention.policies SET memory_max_age = '60 days' WHERE character_id IS NULL`) // unseen before 017
	var tag [4]byte
	_, err = rand.Read(tag[:])
	require.NoError(t, err)
	reader := "rt_reader_" + hex.EncodeToString(tag[:])
	exec(`CREATE ROLE ` + reader)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), db.URL)
		if err == nil {
			_, _ = c.Exec(context.Background(), `DROP OWNED BY `+reader) //nolint:errcheck // then DROP ROLE says
			_, err = c.Exec(context.Background(), `DROP ROLE `+reader)
			c.Close(context.Background())
		}
		if err != nil {
			t.Errorf("drop role %s: %v", reader, err)
		}
	})
	exec(`REVOKE ALL ON FUNCTION retention.policies_as_of(timestamptz) FROM PUBLIC`)
	exec(`GRANT EXECUTE ON FUNCTION retention.policies_as_of(timestamptz) TO ` + reader)
	var migratedAt time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&migratedAt))

	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)

	strs := func(sql string, args ...any) []string {
		t.Helper()
		rows, err := conn.Query(ctx, sql, args...)
		require.NoError(t, err, sql)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, sql)
		return out
	}
	// The baseline of 017: the policies that set memory_max_age, with the value in force then.
	require.Equal(t, []string{"(default) 60 days baseline", "legal 1 year baseline"}, strs(`
		SELECT coalesce(new_character_id, '(default)') || ' ' || new_memory_max_age::text || ' ' || op
		FROM retention.policy_history WHERE reason LIKE '%(migration 017)' ORDER BY id`))

	asOf := func(at time.Time) []string {
		t.Helper()
		return strs(`SELECT coalesce(character_id, '(default)') || '=' || coalesce(memory_max_age::text, 'none')
			FROM retention.policies_as_of($1)`, at)
	}
	require.Equal(t, []string{"(default)=none", "kids=none", "legal=none"}, asOf(migratedAt),
		"before 017 the history did not record memory_max_age")
	require.Equal(t, []string{"(default)=60 days", "kids=none", "legal=1 year"}, asOf(time.Now().Add(time.Hour)))

	exec(`UPDATE retention.policies SET memory_max_age = '45 days' WHERE character_id = 'kids'`)
	require.Equal(t, []string{"update kids none -> 45 days 7 days -> 7 days"}, strs(`
		SELECT op || ' ' || new_character_id || ' ' || coalesce(old_memory_max_age::text, 'none') || ' -> '
		       || new_memory_max_age::text || ' ' || old_max_age::text || ' -> ' || new_max_age::text
		FROM retention.policy_history WHERE op = 'update'`))
	require.Equal(t, []string{"(default)=60 days", "kids=45 days", "legal=1 year"}, asOf(time.Now().Add(time.Hour)))

	// '1 mon' and '30 days' are equal as intervals, not as thresholds: each change is a version,
	// of memory_max_age and of max_age alike.
	exec(`UPDATE retention.policies SET memory_max_age = '1 mon' WHERE character_id = 'legal'`)
	exec(`UPDATE retention.policies SET memory_max_age = '30 days' WHERE character_id = 'legal'`)
	exec(`UPDATE retention.policies SET max_age = '1 mon' WHERE character_id = 'kids'`)
	exec(`UPDATE retention.policies SET max_age = '30 days' WHERE character_id = 'kids'`)
	require.Equal(t, []string{"legal 1 year -> 1 mon", "legal 1 mon -> 30 days", "kids 7 days -> 1 mon", "kids 1 mon -> 30 days"}, strs(`
		SELECT new_character_id || ' ' || CASE WHEN new_character_id = 'legal'
		       THEN old_memory_max_age::text || ' -> ' || new_memory_max_age::text
		       ELSE old_max_age::text || ' -> ' || new_max_age::text END
		FROM retention.policy_history WHERE op = 'update' AND id > (SELECT min(id) FROM retention.policy_history WHERE op = 'update')
		ORDER BY id`))

	// The grants of policies_as_of are as they were: the reader may call it, PUBLIC may not.
	var reads, public bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT has_function_privilege($1, 'retention.policies_as_of(timestamptz)', 'EXECUTE'),
		(SELECT p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0) -- NULL: the default, PUBLIC's
		 FROM pg_proc p WHERE p.oid = 'retention.policies_as_of(timestamptz)'::regprocedure)`, reader).Scan(&reads, &public))
	require.True(t, reads, "the reader keeps EXECUTE")
	require.False(t, public, "PUBLIC stays without it")
}
