package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/migrations"
)

// setupTimeout bounds connecting and the checks before a command's work: a database that does
// not answer is a fatal error, not a hang.
const setupTimeout = 30 * time.Second

// connectCurrent connects like connect and refuses a schema that is missing or older than this
// binary ("run retention migrate").
func connectCurrent(ctx context.Context, dsn string, conns int32) (*pgxpool.Pool, error) {
	pool, err := connect(ctx, dsn, conns)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if _, err := migrations.Check(cctx, pool); err != nil {
		pool.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			return nil, usagef("%v: the login of DATABASE_URL may not read the retention schema. With sql/roles.sql applied "+
				"(as a superuser, once), connect as retention_job to run, sync, verify or discover, as retention_auditor "+
				"for report and audit, and as retention_owner for migrate; a source of your own needs its own "+
				"GRANT SELECT to the job (and to the auditor for the report)", err)
		}
		return nil, err
	}
	return pool, nil
}

// connect opens a pool of at most conns connections, named in pg_stat_activity, and checks it
// answers within setupTimeout.
func connect(ctx context.Context, dsn string, conns int32) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, dsnError("DATABASE_URL", dsn, err) // databaseURL checked it: a guard that quotes none of it
	}
	cfg.MaxConns = conns
	tuneConnections(cfg)
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "convai-retention"
	}
	// No named prepared statements: a connection pooler in transaction mode (PgBouncer's
	// pool_mode = transaction, the pooled ports of managed platforms) runs each transaction on
	// whichever server session it picks, where a statement prepared on another is missing or
	// already exists. Each statement goes as the unnamed one (its description cached here), in
	// one round trip, and is planned with its arguments every time: the selection and record
	// statements run thousands of times while retention.deletions grows from nothing, and a
	// generic plan made early (when the table was empty) would scan it for every page. The
	// schema's functions plan their own statements the same way (migrations/012_pooler.sql).
	// Nothing is sent as a startup parameter a pooler may refuse; application_name is one
	// PgBouncer knows.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(err)
	}
	if err := checkTransactions(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// connectError is err from a first connection. A refused login is the operator's
// configuration, not an outage: a usage error (exit 2) that a Job does not retry, with a hint.
func connectError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return usagef("connect to database: the server refused the login (%s, SQLSTATE %s): check the user and "+
				"password of the connection string (DATABASE_URL, DATABASE_URL_FILE or SOURCE_DATABASE_URL), and pg_hba.conf",
				pgErr.Message, pgErr.Code)
		case "3D000": // invalid_catalog_name
			return usagef("connect to database: %s (SQLSTATE %s): check the database name of the connection string",
				pgErr.Message, pgErr.Code)
		}
	}
	return fmt.Errorf("connect to database: %w", err)
}

// protocolViolation is the SQLSTATE PgBouncer in statement mode answers BEGIN with.
const protocolViolation = "08P01"

// checkTransactions refuses, as a usage error, a connection that allows no transaction: a
// pooler in statement mode (PgBouncer's pool_mode = statement) ends the connection at BEGIN.
// The run lock, migrate, sync, report and verify all need transactions; transaction and session
// mode work.
func checkTransactions(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err == nil {
		err = tx.Rollback(ctx)
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == protocolViolation:
		return usagef("DATABASE_URL: the database refused a transaction (%s): a connection pooler in "+
			"statement mode does that. The job needs transactions: point DATABASE_URL at the pooler's "+
			"transaction or session mode (PgBouncer: pool_mode = transaction or session), or at the database itself",
			pgErr.Message)
	case err != nil:
		return fmt.Errorf("connect to database: %w", err)
	}
	return nil
}
