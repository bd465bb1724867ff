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

// Every constraint named in constraintRules is a check constraint of the schema that covers the
// column it names, and every check constraint of the tables an operator writes is named there.
func TestConstraintRulesNameTheSchemasConstraints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, r := range constraintRules {
		table := r.column[:strings.LastIndex(r.column, ".")]
		column := r.column[strings.LastIndex(r.column, ".")+1:]
		require.Contains(t, operatorTables, strings.TrimPrefix(table, "retention."), "constraint %s", name)
		n := b.count(t, `SELECT count(*) FROM pg_constraint c
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) AND a.attname = $3
			WHERE c.conname = $1 AND c.conrelid = $2::regclass AND c.contype = 'c'`, name, table, column)
		require.Equal(t, 1, n, "constraint %s covers %s", name, r.column)
	}
	var tables []string
	for _, tbl := range operatorTables {
		tables = append(tables, "retention."+tbl)
	}
	all := b.strings(t, `SELECT c.conname FROM pg_constraint c
		WHERE c.contype = 'c' AND c.conrelid = ANY($1::regclass[]) ORDER BY 1`, tables)
	require.NotEmpty(t, all)
	for _, name := range all {
		require.Contains(t, constraintRules, name, "check constraint %s of a table an operator writes has no rule in words", name)
	}
}

// A value that breaks a rule of the schema, as plain SQL or a command writes it, is explained:
// the column and the rule, exit 2; the server's message stays.
func TestConstraintViolationsNameTheColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, c := range []struct {
		sql  string
		want string
	}{
		{`INSERT INTO retention.holds (character_id, reason) VALUES ('  ', 'legal')`,
			"retention.holds.character_id must not be blank: a hold names the character it protects"},
		{`INSERT INTO retention.holds (character_id, reason) VALUES ('c', '')`, "retention.holds.reason must not be blank"},
		{`INSERT INTO retention.policies (character_id, max_age) VALUES ('', '30 days')`,
			"retention.policies.character_id must not be blank: NULL is the default policy"},
		{`INSERT INTO retention.erasure_requests (character_id, reason, requested_by) VALUES ('', 'ticket 1', 'alice')`,
			"retention.erasure_requests.character_id must be a well-formed ID"},
		{`INSERT INTO retention.policies (character_id, max_age) VALUES ('c', NULL)`, "policies.max_age must be given (not NULL)"},
		{`INSERT INTO retention.policies (character_id, max_age, memory_max_age) VALUES ('c', '30 days', '1 minute')`,
			"retention.policies.memory_max_age must be NULL (memory kept as long as Convai keeps it), or at least one hour"},
		{`INSERT INTO retention.end_user_requests (end_user_id, reason, due_at) VALUES ('player-1', ' ', now() + interval '30 days')`,
			"retention.end_user_requests.reason must not be blank"},
		{`INSERT INTO retention.end_user_requests (end_user_id, reason, due_at) VALUES ('', 'ticket 2', now() + interval '30 days')`,
			"retention.end_user_requests.end_user_id must be a well-formed ID"},
	} {
		_, err := b.db.Pool.Exec(ctx, c.sql)
		require.Error(t, err, c.sql)
		got := explainDB([]string{"erase"}, err, "")
		require.Contains(t, got.Error(), c.want, c.sql)
		require.Contains(t, got.Error(), "violates", "the server's message stays: %s", c.sql)
		require.Equal(t, exitcode.Usage, codeOf(got), c.sql)
	}
	// A message that kept only the server's words is explained too (source.ErrBadRequest).
	require.Equal(t, `retention.erasure_requests.reason must not be blank, and at most 1,000 characters (new row for relation "erasure_requests" violates check constraint "erasure_reason_given")`,
		explainConstraintMessage(`new row for relation "erasure_requests" violates check constraint "erasure_reason_given"`))
}

// A NULL refused in a table an operator writes is the operator's to fix (exit 2, no usage
// hint); one refused in a table only the job writes is a fault of the job, not a usage error,
// and keeps its exit code and message.
func TestNotNullIsTheOperatorsOnlyInTheTablesTheyWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	_, err := b.db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c', NULL)`)
	require.Error(t, err)
	got := explainDB([]string{"policy", "apply"}, err, "")
	var refusal *dbRefusalError
	require.ErrorAs(t, got, &refusal)
	require.Contains(t, got.Error(), "retention.policies.max_age must be given (not NULL)")
	require.Equal(t, exitcode.Usage, codeOf(got))

	_, err = b.db.Pool.Exec(ctx, `INSERT INTO retention.runs (cutoff, source) VALUES (now(), NULL)`)
	require.Error(t, err)
	got = explainDB([]string{"run"}, err, "")
	require.Same(t, err, got, "a refusal of the job's own write is returned as it is")
	require.NotErrorAs(t, got, &refusal)
	require.Equal(t, exitcode.Fatal, codeOf(got))
}

// A login that may read the schema's version but not what a command reads is told which role
// of sql/roles.sql the command needs, with exit 2, not exit 5 that a Job retries.
func TestPermissionDeniedNamesTheRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	role := "half_grants_" + strings.ToLower(rand.Text()[:8])
	b.exec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		_, _ = b.db.Pool.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = b.db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	b.exec(t, "GRANT USAGE ON SCHEMA retention TO "+role)
	b.exec(t, "GRANT SELECT ON retention.schema_version TO "+role)
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	env := with(b.env, "DATABASE_URL", u.String())
	for _, c := range []struct {
		args []string
		role string
	}{
		{[]string{"report", "--format", "json"}, "connect as retention_auditor for report"},
		{[]string{"run", "--dry-run"}, "connect as retention_job for run"},
		{[]string{"policy", "export"}, "connect as retention_auditor (it reads retention.policies) for policy export"},
	} {
		r := run(t, env, c.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v\n%s", c.args, r)
		require.Contains(t, r.stderr, "permission denied", "%v", c.args)
		require.Contains(t, r.stderr, c.role, "%v", c.args)
		require.Contains(t, r.stderr, "sql/roles.sql", "%v", c.args)
		require.Contains(t, r.stderr, `role "`+role+`", the login of DATABASE_URL, lacks a grant`, "%v: the role missing the grant is named", c.args)
		require.NotContains(t, r.stderr, "for usage", "%v: the command line was right: no usage hint", c.args)
	}
}

// A source read on SOURCE_DATABASE_URL as a login that may not SELECT it is refused with the
// grant that login needs on the source, not with the login of DATABASE_URL or retention_job's.
func TestPermissionDeniedOnTheSourceNamesItsLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	schema := "src_" + strings.ToLower(rand.Text()[:8])
	role := "src_reader_" + strings.ToLower(rand.Text()[:8])
	b.exec(t, "CREATE SCHEMA "+schema)
	b.exec(t, "CREATE TABLE "+schema+".s (character_id text, session_id text, last_active_at timestamptz)")
	b.exec(t, "INSERT INTO "+schema+".s VALUES ('c', 's1', now() - interval '400 days')")
	b.exec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		_, _ = b.db.Pool.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = b.db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	b.exec(t, "GRANT USAGE ON SCHEMA "+schema+" TO "+role) // but no SELECT on the table
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	env := with(b.env, "SOURCE_DATABASE_URL", u.String())

	r := run(t, env, "run", "--dry-run", "--source", schema+".s")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "permission denied")
	require.Contains(t, r.stderr, `role "`+role+`", the login the source is read as, lacks a grant on the source`)
	require.Contains(t, r.stderr, "GRANT USAGE ON SCHEMA "+schema+" and GRANT SELECT ON "+schema+".s to that role")
	require.NotContains(t, r.stderr, "the login of DATABASE_URL")
	require.NotContains(t, r.stderr, "retention_job")
}
