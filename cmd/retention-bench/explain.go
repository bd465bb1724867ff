package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/source"
)

// plan is the EXPLAIN (ANALYZE, BUFFERS) of one statement the job runs.
type plan struct {
	Label string `json:"label"`
	SQL   string `json:"sql"`
	Plan  string `json:"plan"`
}

// recorder is a pgx tracer that keeps the SQL and arguments of every query, so the bench can
// explain exactly what source.Store sends without knowing its SQL.
type recorder struct {
	mu      sync.Mutex
	queries []pgx.TraceQueryStartData
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, d)
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the queries recorded since the last take whose SQL holds marker, ignoring case
// and white space, and forgets them all.
func (r *recorder) take(marker string) []pgx.TraceQueryStartData {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pgx.TraceQueryStartData
	for _, q := range r.queries {
		if strings.Contains(strings.ToUpper(strings.Join(strings.Fields(q.SQL), " ")), strings.ToUpper(marker)) {
			out = append(out, q)
		}
	}
	r.queries = nil
	return out
}

// explain captures the statements source.Store runs for the first selection page, a page from
// the middle of the backlog, the claim of one chunk and the record of its outcomes, and
// explains each on the database at dbURL. The claim and record are explained inside a
// transaction that is rolled back; the capture itself writes nothing (it claims for a run that
// does not exist, which the database refuses).
func explain(ctx context.Context, dbURL string, chunkSize int) ([]plan, error) {
	rec := &recorder{}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	rel, err := source.ParseRelation(source.DefaultRelation)
	if err != nil {
		return nil, err
	}
	src, err := source.Inspect(ctx, pool, rel)
	if err != nil {
		return nil, err
	}
	store := source.New(pool, src, source.Config{WriteRetry: time.Second})
	now, err := store.Now(ctx)
	if err != nil {
		return nil, err
	}
	policies, holds, err := store.Rules(ctx, now)
	if err != nil {
		return nil, err
	}
	rules, err := policy.NewSet(policies, holds)
	if err != nil {
		return nil, err
	}
	horizon, ok := rules.Horizon()
	if !ok {
		return nil, errors.New("no enabled policy: nothing would be selected")
	}
	const pageSize = job.PageSizeDefault // what a run reads per page unless told otherwise
	rec.take("")

	var plans []plan
	add := func(label string, q pgx.TraceQueryStartData, tx pgx.Tx) error {
		text, err := explainOne(ctx, tx, q.SQL, q.Args)
		if err != nil {
			return fmt.Errorf("explain %s: %w", label, err)
		}
		plans = append(plans, plan{Label: label, SQL: strings.TrimSpace(q.SQL), Plan: text})
		return nil
	}
	one := func(label string, qs []pgx.TraceQueryStartData) (pgx.TraceQueryStartData, error) {
		if len(qs) != 1 {
			return pgx.TraceQueryStartData{}, fmt.Errorf("capture %s: saw %d statements, want 1", label, len(qs))
		}
		return qs[0], nil
	}

	if _, err := store.Page(ctx, job.Cursor{}, horizon, pageSize); err != nil {
		return nil, err
	}
	first, err := one("first page", rec.take(`FROM "retention"."sessions" s`))
	if err != nil {
		return nil, err
	}
	var mid job.Cursor
	if err := pool.QueryRow(ctx, `
		SELECT last_active_at, character_id, session_id FROM retention.sessions
		ORDER BY last_active_at, character_id, session_id
		OFFSET (SELECT count(*) / 2 FROM retention.sessions) LIMIT 1`).Scan(&mid.LastActive, &mid.CharacterID, &mid.SessionID); err != nil {
		return nil, fmt.Errorf("find the middle of the backlog: %w", err)
	}
	mid.Started = true
	rec.take("")
	if _, err := store.Page(ctx, mid, horizon, pageSize); err != nil {
		return nil, err
	}
	middle, err := one("middle page", rec.take(`FROM "retention"."sessions" s`))
	if err != nil {
		return nil, err
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // rolled back on purpose
	if err := add(fmt.Sprintf("first selection page (--page-size %d)", pageSize), first, tx); err != nil {
		return nil, err
	}
	if err := add("selection page from the middle of the backlog", middle, tx); err != nil {
		return nil, err
	}
	// The job's connections prepare each statement once and run it many times; from the sixth
	// run on, PostgreSQL may switch to a generic plan made without the parameter values, and
	// keeps it until the tables' statistics change. Made at the start of a first run, it sees
	// an empty retention.deletions.
	text, err := explainGeneric(ctx, tx, middle.SQL, middle.Args)
	if err != nil {
		return nil, fmt.Errorf("explain the generic plan of a page: %w", err)
	}
	plans = append(plans, plan{Label: "selection page from the middle, generic plan (plan_cache_mode = force_generic_plan)",
		SQL: strings.TrimSpace(middle.SQL), Plan: text})
	return plans, nil
}

// explainOne runs EXPLAIN (ANALYZE, BUFFERS) of sql with args in tx.
func explainOne(ctx context.Context, tx pgx.Tx, sql string, args []any) (string, error) {
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// explainGeneric explains sql as a prepared statement with its generic plan, the arguments
// written as literals.
func explainGeneric(ctx context.Context, tx pgx.Tx, sql string, args []any) (string, error) {
	lits := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			lits[i] = "'" + v.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		case string:
			lits[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case int, int32, int64:
			lits[i] = fmt.Sprint(v)
		default:
			return "", fmt.Errorf("argument %d: cannot write a %T as a literal", i+1, a)
		}
	}
	for _, stmt := range []string{"SET LOCAL plan_cache_mode = force_generic_plan", "PREPARE retention_bench_generic AS " + sql} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return "", err
		}
	}
	text, err := explainOne(ctx, tx, "EXECUTE retention_bench_generic("+strings.Join(lits, ", ")+")", nil)
	if _, derr := tx.Exec(ctx, "DEALLOCATE retention_bench_generic"); err == nil {
		err = derr
	}
	if _, rerr := tx.Exec(ctx, "RESET plan_cache_mode"); err == nil {
		err = rerr
	}
	return text, err
}
