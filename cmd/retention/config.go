package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/migrations"
)

// databaseURL returns DATABASE_URL, required.
func (a *app) databaseURL() (string, error) {
	u := strings.TrimSpace(a.getenv("DATABASE_URL"))
	if u == "" {
		return "", usagef("DATABASE_URL is not set: give the PostgreSQL connection string, e.g. postgres://retention@db:5432/app")
	}
	return u, nil
}

// apiKey returns the key from CONVAI_API_KEY or the file named by CONVAI_API_KEY_FILE (one of
// them, not both). Surrounding white space, such as a file's final newline, is dropped.
func (a *app) apiKey() (string, error) {
	key, file := a.getenv("CONVAI_API_KEY"), a.getenv("CONVAI_API_KEY_FILE")
	switch {
	case key != "" && file != "":
		return "", usagef("both CONVAI_API_KEY and CONVAI_API_KEY_FILE are set: keep one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("CONVAI_API_KEY_FILE: cannot read %s: %v", file, err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return "", usagef("CONVAI_API_KEY_FILE: %s is empty", file)
		}
	case strings.TrimSpace(key) == "":
		return "", usagef("no API key: set CONVAI_API_KEY, or CONVAI_API_KEY_FILE to a file holding it (a dry-run needs none)")
	}
	return strings.TrimSpace(key), nil
}

// secrets lists the values that must never be printed: the API key and the database password.
func (a *app) secrets() []string {
	var out []string
	if k := strings.TrimSpace(a.getenv("CONVAI_API_KEY")); k != "" {
		out = append(out, k)
	}
	if f := a.getenv("CONVAI_API_KEY_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			if k := strings.TrimSpace(string(b)); k != "" {
				out = append(out, k)
			}
		}
	}
	if dsn := a.getenv("DATABASE_URL"); dsn != "" {
		if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
			out = append(out, cfg.Password, url.QueryEscape(cfg.Password), url.PathEscape(cfg.Password))
		} else if u, err := url.Parse(dsn); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p, url.QueryEscape(p))
			}
		}
	}
	return out
}

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
		return nil, usagef("DATABASE_URL is not a valid connection string: %v", err)
	}
	cfg.MaxConns = conns
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

// safeURL returns u without user info, query or fragment, for the run's recorded settings.
func safeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "[unparsable]"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}
