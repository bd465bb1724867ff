// Package migrations owns the retention schema: numbered SQL files embedded in the binary and
// applied with tern, under an advisory lock so two pods migrating at once is safe.
//
// The migrations are history: a function restated by a later one is current only there. To read
// the schema as it is now, open schema.sql in this directory: every table with its constraints,
// indexes and triggers, every view, and every function's current source, generated from a
// database the migrations built. TestCurrentSchema fails when it differs from what the
// migrations produce; after adding a migration, regenerate it with
//
//	go test ./migrations -run TestCurrentSchema -update
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
)

// files are the numbered migrations; schema.sql, generated from them, is not one.
//
//go:embed [0-9]*.sql
var files embed.FS

// VersionTable is the table where tern records the applied version.
const VersionTable = "retention.schema_version"

// lockKey serialises whole migrate calls, including the creation of the schema itself, which
// tern's own lock does not cover.
const lockKey = int64(0x52455445_4e54494f) // "RETENTIO"

// ErrSchemaMissing is returned by Check when the retention schema has never been migrated.
var ErrSchemaMissing = errors.New("the retention schema is missing: run retention migrate")

// OutdatedError is returned by Check when the database schema is older than this binary.
type OutdatedError struct {
	Have, Want int32
}

func (e *OutdatedError) Error() string {
	return fmt.Sprintf("the retention schema is at version %d, this binary needs %d: run retention migrate", e.Have, e.Want)
}

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// Latest is the version the embedded migrations bring a database to.
func Latest() int32 {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		panic(fmt.Sprintf("embedded migrations are malformed: %v", err))
	}
	return int32(len(names))
}

// Migrate brings the database on conn up to Latest. It is safe to run twice and from several
// processes at once. It returns the version before and after.
//
// Everything happens in one transaction, under a transaction-scoped advisory lock: the pending
// migrations apply together or not at all, and a connection pooler in transaction mode keeps the
// whole of it on one server session (a session-level lock taken through such a pooler would stay
// on whichever session served it, and block the next migrate). tern's own lock, taken and
// released inside the transaction, is released on that same session.
func Migrate(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			// A fresh context: the rollback must run even when ctx is done.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = tx.Rollback(rctx) //nolint:errcheck // the migration error is the one to report
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
		return 0, 0, fmt.Errorf("take migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS retention"); err != nil {
		return 0, 0, fmt.Errorf("create schema retention: %w", err)
	}
	// DisableTx: the migrations run in this transaction, not in one of tern's each.
	m, err := migrate.NewMigratorEx(ctx, conn, VersionTable, &migrate.MigratorOptions{DisableTx: true})
	if err != nil {
		return 0, 0, fmt.Errorf("prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return 0, 0, fmt.Errorf("load migrations: %w", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	if from < 0 || int(from) > len(m.Migrations) {
		return from, 0, fmt.Errorf("the schema is at version %d, which this binary does not know (it knows 1 to %d)", from, len(m.Migrations))
	}
	for _, mig := range m.Migrations[from:] {
		// The whole file in one simple query, as tern sends it; then RESET ALL, as tern does, so
		// a setting a migration changed (search_path) does not outlive it.
		if _, err := tx.Exec(ctx, mig.UpSQL); err != nil {
			return from, 0, fmt.Errorf("migrate from version %d: %s: %w", from, mig.Name, err)
		}
		if _, err := tx.Exec(ctx, "RESET ALL"); err != nil {
			return from, 0, fmt.Errorf("migrate from version %d: reset settings after %s: %w", from, mig.Name, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE "+VersionTable+" SET version = $1", mig.Sequence); err != nil {
			return from, 0, fmt.Errorf("migrate from version %d: record version %d: %w", from, mig.Sequence, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return from, 0, fmt.Errorf("migrate from version %d: commit: %w", from, err)
	}
	return from, from + int32(len(m.Migrations[from:])), nil
}

// Querier is the one method Check needs; *pgx.Conn, *pgxpool.Pool and pgx.Tx have it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Check reports whether the database schema is at least Latest. It returns ErrSchemaMissing or
// an *OutdatedError when it is not, and the version it found.
func Check(ctx context.Context, q Querier) (int32, error) {
	var v int32
	err := q.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"): // undefined table / schema
		return 0, ErrSchemaMissing
	case errors.Is(err, pgx.ErrNoRows):
		return 0, ErrSchemaMissing
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if want := Latest(); v < want {
		return v, &OutdatedError{Have: v, Want: want}
	}
	return v, nil
}
