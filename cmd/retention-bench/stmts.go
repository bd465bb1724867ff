package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// How statements are counted. pg_stat_statements counts every statement a database ran,
// BEGIN and COMMIT included, with its time; it needs the server to preload it (scripts/bench.sh
// does). Without it the bench falls back to the transactions PostgreSQL counted for the database
// in pg_stat_database, which equals the statements for autocommit statements and undercounts a
// transaction of several.
const (
	methodStatements   = "pg_stat_statements"
	methodTransactions = "pg_stat_database transactions"
)

// statementCounter counts what a run's database executed.
type statementCounter struct {
	admin  *pgxpool.Pool
	method string
}

// newStatementCounter picks the best method the server allows.
func newStatementCounter(ctx context.Context, admin *pgxpool.Pool) *statementCounter {
	c := &statementCounter{admin: admin, method: methodTransactions}
	if _, err := admin.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return c
	}
	var n int64
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements").Scan(&n); err != nil {
		return c // installed but not preloaded
	}
	c.method = methodStatements
	return c
}

// statement is one normalised statement of the run's database.
type statement struct {
	Kind    string  `json:"kind"`
	Calls   int64   `json:"calls"`
	TotalMs float64 `json:"total_ms"`
	MeanMs  float64 `json:"mean_ms"`
	MaxMs   float64 `json:"max_ms"`
	Rows    int64   `json:"rows"`
	Query   string  `json:"query"`
}

// counts is what a database executed between reset and read.
type counts struct {
	Method       string      `json:"method"`
	Transactions int64       `json:"transactions"`
	Statements   int64       `json:"statements"` // 0 without pg_stat_statements
	Top          []statement `json:"top,omitempty"`
	xactBefore   int64
}

// reset starts counting for database oid.
func (c *statementCounter) reset(ctx context.Context, oid uint32) (*counts, error) {
	out := &counts{Method: c.method}
	if c.method == methodStatements {
		if _, err := c.admin.Exec(ctx, "SELECT pg_stat_statements_reset(0, $1::oid, 0)", oid); err != nil {
			return nil, fmt.Errorf("reset pg_stat_statements: %w", err)
		}
	}
	x, err := c.transactions(ctx, oid)
	out.xactBefore = x
	return out, err
}

func (c *statementCounter) transactions(ctx context.Context, oid uint32) (int64, error) {
	var n int64
	// A fresh snapshot of the statistics, not one cached earlier in this session.
	if _, err := c.admin.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return 0, err
	}
	err := c.admin.QueryRow(ctx, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datid = $1::oid", oid).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read pg_stat_database: %w", err)
	}
	return n, nil
}

// read fills out once the run's backends are gone (their statistics are flushed when they end).
func (c *statementCounter) read(ctx context.Context, oid uint32, dbName string, out *counts) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := c.admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
			dbName, appName).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond) // statistics of ended backends reach shared memory soon after
	x, err := c.transactions(ctx, oid)
	if err != nil {
		return err
	}
	out.Transactions = x - out.xactBefore
	if c.method != methodStatements {
		return nil
	}
	rows, err := c.admin.Query(ctx, `
		SELECT calls, total_exec_time, mean_exec_time, max_exec_time, rows, query
		FROM pg_stat_statements WHERE dbid = $1::oid ORDER BY total_exec_time DESC`, oid)
	if err != nil {
		return fmt.Errorf("read pg_stat_statements: %w", err)
	}
	out.Top, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (statement, error) {
		var s statement
		err := r.Scan(&s.Calls, &s.TotalMs, &s.MeanMs, &s.MaxMs, &s.Rows, &s.Query)
		s.Query = strings.Join(strings.Fields(s.Query), " ")
		s.Kind = kindOf(s.Query)
		return s, err
	})
	if err != nil {
		return fmt.Errorf("read pg_stat_statements: %w", err)
	}
	for _, s := range out.Top {
		out.Statements += s.Calls
	}
	return nil
}

// kindOf names the part of the job a statement belongs to.
func kindOf(q string) string {
	l := strings.ToLower(q)
	switch {
	case strings.Contains(l, "from retention.claim("):
		return "claim"
	case strings.Contains(l, "select retention.record("):
		return "record"
	case strings.Contains(l, "from retention.seal()"):
		return "seal"
	case strings.Contains(l, `from "retention"."sessions" s`) || strings.Contains(l, "from retention.sessions s"):
		return "page"
	case strings.Contains(l, "from unnest($2::text[]) as u(session_id)"):
		return "held"
	case l == "begin" || strings.HasPrefix(l, "begin ") || l == "commit" || l == "rollback":
		return "transaction"
	case strings.Contains(l, "retention.runs"):
		return "run"
	}
	return "other"
}

// perKind adds up calls and time by kind.
func (c *counts) perKind() map[string]statement {
	m := map[string]statement{}
	for _, s := range c.Top {
		k := m[s.Kind]
		k.Kind = s.Kind
		k.Calls += s.Calls
		k.TotalMs += s.TotalMs
		k.MaxMs = max(k.MaxMs, s.MaxMs)
		k.Rows += s.Rows
		m[s.Kind] = k
	}
	for kind, k := range m {
		if k.Calls > 0 {
			k.MeanMs = k.TotalMs / float64(k.Calls)
		}
		m[kind] = k
	}
	return m
}
