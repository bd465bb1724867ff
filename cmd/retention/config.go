package main

import (
	"context"
	"fmt"
	"time"

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
	// The selection and record statements are prepared once and run thousands of times while
	// retention.deletions grows from nothing. A generic plan made early (when the table was
	// empty) would scan it for every page; a custom plan per execution stays on the indexes.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}
