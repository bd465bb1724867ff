package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/migrations"
)

// maxAge is the default policy of the seeded database; every seeded session is older.
const maxAge = "30 days"

// server is the PostgreSQL server the bench works on, through an administrative pool on the
// database of the URL it was given.
type server struct {
	url   string
	admin *pgxpool.Pool
}

func connectServer(ctx context.Context, raw string) (*server, error) {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, usagef("the database URL is not a valid connection string: %v", err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["application_name"] = "retention-bench"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURL(raw), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w (scripts/bench.sh starts a throwaway server)", redactURL(raw), err)
	}
	return &server{url: raw, admin: pool}, nil
}

func (s *server) close() { s.admin.Close() }

// urlFor returns the server URL pointing at database name.
func (s *server) urlFor(name string) (string, error) {
	if strings.HasPrefix(s.url, "postgres://") || strings.HasPrefix(s.url, "postgresql://") {
		u, err := url.Parse(s.url)
		if err != nil {
			return "", err
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	return s.url + " dbname=" + name, nil // keyword/value: the last dbname wins
}

func (s *server) exists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	return ok, err
}

func (s *server) drop(ctx context.Context, name string) error {
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// clone creates name as a copy of template. FILE_COPY copies the files instead of writing
// every page to the WAL: much faster for a large template (PostgreSQL 15 and later).
func (s *server) clone(ctx context.Context, name, template string) error {
	if err := s.drop(ctx, name); err != nil {
		return err
	}
	sql := "CREATE DATABASE " + ident(name) + " TEMPLATE " + ident(template)
	_, err := s.admin.Exec(ctx, sql+" STRATEGY FILE_COPY")
	var pgErr *pgconn.PgError
	if err != nil && errors.As(err, &pgErr) && pgErr.Code == "42601" { // older server: no STRATEGY
		_, err = s.admin.Exec(ctx, sql)
	}
	if err != nil {
		return fmt.Errorf("create database %s from %s: %w", name, template, err)
	}
	return nil
}

// seedInfo says how the seeded template came to be.
type seedInfo struct {
	Name    string             `json:"name"`
	Reused  bool               `json:"reused"`
	Steps   map[string]float64 `json:"steps_seconds,omitempty"`
	SizeMiB float64            `json:"size_mib"`
}

// seedName names the template of one backlog: by size, layout and the migrations it was built
// with, so a schema change never reuses a stale template.
func seedName(sessions, characters int) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), path)
		fmt.Fprintf(h, "%s\x00%d\x00%s", path, len(b), b)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return fmt.Sprintf("retention_bench_seed_%d_%d_%s", sessions, characters, hex.EncodeToString(h.Sum(nil))[:10]), nil
}

// seed makes sure a migrated template database with the backlog exists and returns it.
//
// The backlog: sessions rows in retention.sessions over characters characters, interleaved in
// time (session i belongs to character i mod characters), last active from 395 to 31 days ago,
// oldest first in the heap; one default policy of 30 days, so every session is expired. IDs
// look like Convai's: a UUID per character, 32 hex digits per session. The table's indexes are
// dropped for the load and built again after it, then the table is frozen and analysed, so
// index-only scans work from the first query of a run.
func (s *server) seed(ctx context.Context, log func(string, ...any), sessions, characters int, reseed bool) (seedInfo, error) {
	name, err := seedName(sessions, characters)
	if err != nil {
		return seedInfo{}, err
	}
	info := seedInfo{Name: name, Steps: map[string]float64{}}
	if ok, err := s.exists(ctx, name); err != nil {
		return info, fmt.Errorf("look up %s: %w", name, err)
	} else if ok && !reseed {
		info.Reused = true
		info.SizeMiB, err = s.sizeMiB(ctx, name)
		log("reusing seeded template %s (%.0f MiB); --reseed seeds again", name, info.SizeMiB)
		return info, err
	}
	building := name + "_building"
	for _, n := range []string{name, building} {
		if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+ident(n)+" WITH IS_TEMPLATE false"); err != nil && !isUndefinedDatabase(err) {
			return info, fmt.Errorf("unmark template %s: %w", n, err)
		}
		if err := s.drop(ctx, n); err != nil {
			return info, err
		}
	}
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(building)+" TEMPLATE template0"); err != nil {
		return info, fmt.Errorf("create %s: %w", building, err)
	}
	u, err := s.urlFor(building)
	if err != nil {
		return info, err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return info, fmt.Errorf("connect to %s: %w", building, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	step := func(label string, fn func() error) error {
		began := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("seed %s: %s: %w", name, label, err)
		}
		info.Steps[label] = time.Since(began).Seconds()
		log("seed: %s took %.1fs", label, info.Steps[label])
		return nil
	}
	var rebuild []string
	steps := []struct {
		label string
		fn    func() error
	}{
		{"migrate", func() error { _, _, err := migrations.Migrate(ctx, conn); return err }},
		{"policy", func() error {
			_, err := conn.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age, note)
				VALUES (NULL, $1::interval, 'retention-bench: every seeded session is expired')`, maxAge)
			return err
		}},
		{"drop indexes", func() error { rebuild, err = dropIndexes(ctx, conn); return err }},
		{"load", func() error {
			_, err := conn.Exec(ctx, `SET maintenance_work_mem = '512MB'`)
			if err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `
				INSERT INTO retention.sessions (character_id, session_id, last_active_at)
				SELECT md5('character-' || i % $2::bigint)::uuid::text, md5('session-' || i),
				       now() - interval '31 days' - ($1::bigint - i) * (interval '364 days' / $1::bigint)
				FROM generate_series(1, $1::bigint) AS i`, int64(sessions), int64(characters))
			return err
		}},
		{"build indexes", func() error {
			for _, sql := range rebuild {
				if _, err := conn.Exec(ctx, sql); err != nil {
					return fmt.Errorf("%s: %w", sql, err)
				}
			}
			return nil
		}},
		{"vacuum freeze analyze", func() error {
			_, err := conn.Exec(ctx, `VACUUM (FREEZE, ANALYZE) retention.sessions`)
			if err == nil {
				_, err = conn.Exec(ctx, `ANALYZE`)
			}
			return err
		}},
	}
	for _, st := range steps {
		if err := step(st.label, st.fn); err != nil {
			return info, err
		}
	}
	conn.Close(ctx)
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+ident(building)+" RENAME TO "+ident(name)); err != nil {
		return info, fmt.Errorf("rename %s: %w", building, err)
	}
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true"); err != nil {
		return info, fmt.Errorf("mark %s as a template: %w", name, err)
	}
	info.SizeMiB, err = s.sizeMiB(ctx, name)
	return info, err
}

func (s *server) sizeMiB(ctx context.Context, name string) (float64, error) {
	var b int64
	if err := s.admin.QueryRow(ctx, "SELECT pg_database_size($1)", name).Scan(&b); err != nil {
		return 0, fmt.Errorf("size of %s: %w", name, err)
	}
	return float64(b) / (1 << 20), nil
}

// dropIndexes drops the indexes and unique constraints of retention.sessions, whatever the
// migrations made them, and returns the statements that build them again.
func dropIndexes(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT format('ALTER TABLE retention.sessions ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)),
		       format('ALTER TABLE retention.sessions DROP CONSTRAINT %I', conname)
		FROM pg_constraint WHERE conrelid = 'retention.sessions'::regclass AND contype IN ('p', 'u')
		UNION ALL
		SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX retention.%I', c.relname)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'retention.sessions'::regclass
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`)
	if err != nil {
		return nil, err
	}
	type pair struct{ build, drop string }
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
		var p pair
		err := r.Scan(&p.build, &p.drop)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	var build []string
	for _, p := range pairs {
		if _, err := conn.Exec(ctx, p.drop); err != nil {
			return nil, fmt.Errorf("%s: %w", p.drop, err)
		}
		build = append(build, p.build)
	}
	return build, nil
}

func isUndefinedDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// redactURL hides a password in a connection URL.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	if strings.Contains(raw, "password") {
		return "(connection string with a password)"
	}
	return raw
}
