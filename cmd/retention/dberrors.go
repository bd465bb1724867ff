package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/source"
)

// explained wraps a command's Run so that its error passes through explainDB; args is the whole
// command line, the command's name first, and login names the role the command connects as.
func explained(args []string, login func() string, run func(context.Context, []string) error) func(context.Context, []string) error {
	if run == nil {
		return nil
	}
	return func(ctx context.Context, rest []string) error {
		err := run(ctx, rest)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return explainDB(args, err, login())
		}
		return explainDB(args, err, "")
	}
}

// loginRole is the role DATABASE_URL (or DATABASE_URL_FILE) logs in as, as the driver reads it;
// "" when it cannot tell.
func (a *app) loginRole() string {
	dsn, err := a.databaseURL()
	if err != nil {
		return ""
	}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.User
}

// columnRule is what one constraint of the schema asks of a column, in words.
type columnRule struct {
	column, rule string
}

// operatorTables are the tables of the schema an operator writes (with retention policy apply,
// retention erase or plain SQL). A value refused there is the operator's to fix; a refusal on
// any other table comes from the job's own writes.
var operatorTables = []string{"policies", "holds", "erasure_requests", "end_user_requests"}

// constraintRules are the check constraints of operatorTables, by name: the column and the
// rule. The migrations hold the rules; TestConstraintRulesNameTheSchemasConstraints checks that
// each name here is a constraint of the schema on that column, and that every check constraint
// of operatorTables is here.
var constraintRules = map[string]columnRule{
	"policies_character_id_check":        {"retention.policies.character_id", "must not be blank: NULL is the default policy, any other value names a character"},
	"policies_max_age_at_least_one_hour": {"retention.policies.max_age", "must be at least one hour; write the unit ('30' is 30 seconds), e.g. '30 days'"},
	"policies_max_age_check":             {"retention.policies.max_age", "must be positive, at most 200 years, and have no negative part"},
	"holds_character_id_check":           {"retention.holds.character_id", "must not be blank: a hold names the character it protects"},
	"holds_session_id_check":             {"retention.holds.session_id", "must be NULL (the whole character) or not blank"},
	"holds_reason_check":                 {"retention.holds.reason", "must not be blank: say why the sessions are kept"},
	"holds_check":                        {"retention.holds.released_at", "must not be before created_at"},
	"erasure_character_well_formed":      {"retention.erasure_requests.character_id", "must be a well-formed ID: not blank, no control characters, at most 256 bytes"},
	"erasure_session_well_formed":        {"retention.erasure_requests.session_id", "must be NULL (every session of the character) or a well-formed ID: not blank, no control characters, at most 256 bytes"},
	"erasure_reason_given":               {"retention.erasure_requests.reason", "must not be blank, and at most 1,000 characters"},
	"erasure_requester_named":            {"retention.erasure_requests.requested_by", "must not be blank, and at most 200 characters"},
	"erasure_due_after_request":          {"retention.erasure_requests.due_at", "must be after requested_at"},
	"policies_memory_max_age_check": {"retention.policies.memory_max_age",
		"must be NULL (memory kept as long as Convai keeps it), or at least one hour, at most 200 years, and have no negative part"},
	"end_user_request_user_well_formed":      {"retention.end_user_requests.end_user_id", "must be a well-formed ID: not blank, no control characters, at most 256 bytes"},
	"end_user_request_character_well_formed": {"retention.end_user_requests.character_id", "must be NULL (every character) or a well-formed ID: not blank, no control characters, at most 256 bytes"},
	"end_user_request_reason_given":          {"retention.end_user_requests.reason", "must not be blank, and at most 1,000 characters"},
	"end_user_request_requester_named":       {"retention.end_user_requests.requested_by", "must not be blank, and at most 200 characters"},
	"end_user_request_due_after_request":     {"retention.end_user_requests.due_at", "must be after requested_at"},
}

// constraintInMessage finds the constraint a PostgreSQL message names, for errors that kept
// only the server's message.
var constraintInMessage = regexp.MustCompile(`violates check constraint "([^"]+)"`)

// explainConstraintMessage rewrites a server message that names a known constraint as the
// column and its rule; other messages are returned as they are.
func explainConstraintMessage(msg string) string {
	m := constraintInMessage.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if r, ok := constraintRules[m[1]]; ok {
		return fmt.Sprintf("%s %s (%s)", r.column, r.rule, msg)
	}
	return msg
}

// dbRefusalError is what explainDB returns for a refusal of PostgreSQL that the operator is to
// fix, not an outage that a Job should retry: a missing grant, or a value written to a table
// an operator writes that breaks its rules. codeOf maps it to exit 2. It is not a usage error:
// the command line was right, and a run refused a grant mid-way has printed its summary, which
// says what it did first.
type dbRefusalError struct {
	Err error
}

func (e *dbRefusalError) Error() string { return e.Err.Error() }
func (e *dbRefusalError) Unwrap() error { return e.Err }

// explainDB returns err with what a refusal of PostgreSQL means to the operator of the command
// (args are the command's name and its arguments): a value that breaks a known constraint, or
// a NULL in a NOT NULL column, of a table an operator writes (operatorTables) names the column
// and the rule; a missing privilege names the role that lacks the grant (login, when known)
// and the role of sql/roles.sql to connect as. Those are *dbRefusalError (exit 2). Any other
// error is returned as it is: a refusal of the job's own writes is a fault of the job.
func explainDB(args []string, err error, login string) error {
	var pgErr *pgconn.PgError
	var usage *usageError
	var exit *cli.ExitError
	var refusal *dbRefusalError
	if err == nil || errors.As(err, &usage) || errors.As(err, &exit) || errors.As(err, &refusal) || !errors.As(err, &pgErr) {
		return err
	}
	var read *source.ReadError
	switch {
	case pgErr.Code == "42501" && errors.As(err, &read): // insufficient_privilege, on the source
		who := "the login the source is read as"
		if read.Login != "" {
			who = fmt.Sprintf("role %q, %s,", read.Login, who)
		}
		rel := read.Relation.String()
		return &dbRefusalError{Err: fmt.Errorf("%w: %s lacks a grant on the source. In the source's database (SOURCE_DATABASE_URL, "+
			"or DATABASE_URL when that is not set), GRANT USAGE ON SCHEMA %s and GRANT SELECT ON %s to that role",
			err, who, read.Relation.Schema, rel)}
	case pgErr.Code == "42501": // insufficient_privilege
		who := "the login of DATABASE_URL"
		if login != "" {
			who = fmt.Sprintf("role %q, the login of DATABASE_URL,", login)
		}
		return &dbRefusalError{Err: fmt.Errorf("%w: %s lacks a grant. %s", err, who, roleHint(args))}
	case pgErr.Code == "23514": // check_violation
		if r, ok := constraintRules[pgErr.ConstraintName]; ok {
			return &dbRefusalError{Err: fmt.Errorf("%s %s; the value written breaks constraint %s: %w", r.column, r.rule, pgErr.ConstraintName, err)}
		}
		if pgErr.TableName != "" {
			return fmt.Errorf("a value breaks constraint %s of table %s: %w", pgErr.ConstraintName, pgErr.TableName, err)
		}
	case pgErr.Code == "23502" && pgErr.ColumnName != "" && operatorTable(pgErr.SchemaName, pgErr.TableName): // not_null_violation
		return &dbRefusalError{Err: fmt.Errorf("%s.%s.%s must be given (not NULL): %w", pgErr.SchemaName, pgErr.TableName, pgErr.ColumnName, err)}
	}
	return err
}

// operatorTable reports whether schema.table is one of operatorTables.
func operatorTable(schema, table string) bool {
	return schema == "retention" && slices.Contains(operatorTables, table)
}

// roleHint says which role of sql/roles.sql the command needs, for a refused privilege.
func roleHint(args []string) string {
	var cmd, sub string
	if len(args) > 0 {
		cmd = args[0]
	}
	if len(args) > 1 {
		sub = args[1]
	}
	const again = " (after an upgrade that added a migration, apply sql/roles.sql again, as a superuser: it re-grants what each role needs)"
	switch {
	case cmd == "run" || cmd == "schedule" || cmd == "sync" || cmd == "verify" || cmd == "discover" || cmd == "plan":
		return fmt.Sprintf("With sql/roles.sql applied, connect as retention_job for %s; a source of your own needs its own "+
			"GRANT USAGE on its schema and GRANT SELECT on it to retention_job%s", cmd, again)
	case cmd == "report" || cmd == "audit":
		return fmt.Sprintf("With sql/roles.sql applied, connect as retention_auditor for %s; a source of your own needs its own "+
			"GRANT USAGE on its schema and GRANT SELECT on it to retention_auditor for the report's live counts%s", cmd, again)
	case cmd == "migrate":
		return "Connect as retention_owner, the owner of the schema in sql/roles.sql, or as a role that may create a schema, for migrate"
	case cmd == "policy" && sub == "export":
		return "With sql/roles.sql applied, connect as retention_auditor (it reads retention.policies) for policy export" + again
	case cmd == "policy":
		return "A role of your own that applies policies needs SELECT, INSERT, UPDATE, DELETE on retention.policies and INSERT on " +
			"retention.policy_history, and what retention_job may read (see the top of sql/roles.sql); or connect as retention_owner"
	case cmd == "erase":
		return "A role of your own that files erasure requests needs INSERT on retention.erasure_requests, SELECT on it and on " +
			"retention.erasure_status, and what retention_job may read (see the top of sql/roles.sql); or connect as retention_owner"
	}
	return "sql/roles.sql lists what each role may do: retention_job runs, retention_auditor reports, retention_owner migrates" + again
}
