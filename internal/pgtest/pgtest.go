// Package pgtest gives each test its own real PostgreSQL database.
//
// The server comes from TEST_DATABASE_URL. The first call to New in a test binary builds a
// template database with the embedded migrations (once per distinct set of migration files,
// shared by every test binary that runs against the same server); each New then clones it with
// CREATE DATABASE ... TEMPLATE, a fraction of a second. Every database is dropped when its test
// ends.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := pgtest.New(t)
//		_, err := db.Pool.Exec(ctx, "INSERT INTO retention.policies ...")
//		...
//	}
//
// A test that cannot reach a server fails, naming the way to get one; it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/migrations"
)

// EnvURL names the environment variable that points at the server tests run against. Its
// database is used only to create and drop the test databases.
const EnvURL = "TEST_DATABASE_URL"

// howTo is the remedy every connection failure names.
const howTo = "run `make test` (it starts a throwaway PostgreSQL), or set " + EnvURL + "=postgres://user@host:port/db"

// templateLockKey serialises template creation across test binaries on one server. Advisory
// locks are per database, so it is always taken in the database of TEST_DATABASE_URL.
const templateLockKey = int64(0x52455445_5047544c) // "RETEPGTL"

// templateRecipe is mixed into the template hash: bump it when the way the template is built
// changes, so servers that outlive a checkout get a new template.
const templateRecipe = "pgtest-1"

// opTimeout bounds each administrative statement (connect, create, migrate, drop).
const opTimeout = 60 * time.Second

// Database is one fresh database that belongs to one test.
type Database struct {
	// Name is the database name on the server.
	Name string
	// URL connects to the database, for tests that open their own connections or run a binary.
	URL string
	// Pool is connected to the database and closed before the database is dropped.
	Pool *pgxpool.Pool
}

// shared is the per-binary state: one admin pool and the template name once it exists.
var shared struct {
	mu       sync.Mutex
	admin    *pgxpool.Pool
	adminURL string
	adminErr error  // a failed connect, kept so the other tests fail at once
	template string // set once the template exists
	tplErr   error
}

// Main runs the tests, closes the shared admin connections and exits:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Wrap(m).Run())
}

// Wrap returns m with a Run that also closes the shared admin connections once the tests are
// done, so a leak check that runs after it sees no pool goroutines:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }
func Wrap(m *testing.M) interface{ Run() int } {
	return wrapped{m}
}

type wrapped struct{ m *testing.M }

func (w wrapped) Run() int {
	code := w.m.Run()
	Close()
	return code
}

// Close closes the shared admin connections and forgets any failure to open them. Main and Wrap
// call it; a later New reopens them.
func Close() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.admin != nil {
		shared.admin.Close()
	}
	shared.admin, shared.adminErr = nil, nil
}

// New returns a database with the retention schema migrated to migrations.Latest, cloned from
// the template. It is dropped when t ends.
func New(t testing.TB) *Database {
	t.Helper()
	admin, baseURL, err := adminPool()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ensureTemplate(admin, baseURL)
	if err != nil {
		t.Fatalf("pgtest: prepare template database: %v", err)
	}
	return create(t, admin, baseURL, tpl)
}

// NewEmpty returns a database with no retention schema at all, for tests of migrate and of the
// missing-schema error. It is dropped when t ends.
func NewEmpty(t testing.TB) *Database {
	t.Helper()
	admin, baseURL, err := adminPool()
	if err != nil {
		t.Fatal(err)
	}
	return create(t, admin, baseURL, "template0")
}

// create clones template into a new database for t and registers its drop.
func create(t testing.TB, admin *pgxpool.Pool, baseURL, template string) *Database {
	t.Helper()
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(template)); err != nil {
		t.Fatalf("pgtest: create database %s from %s: %v", name, template, err)
	}
	db := &Database{Name: name}
	t.Cleanup(func() {
		if db.Pool != nil {
			db.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	u, err := withDatabase(baseURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db.URL = u
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatalf("pgtest: open pool on %s: %v", name, err)
	}
	db.Pool = pool
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: connect to %s: %v", name, err)
	}
	return db
}

// adminPool returns the shared pool on the TEST_DATABASE_URL database, opening it on first use.
func adminPool() (*pgxpool.Pool, string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.admin != nil || shared.adminErr != nil {
		return shared.admin, shared.adminURL, shared.adminErr
	}
	raw := os.Getenv(EnvURL)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pool, err := connectAdmin(ctx, raw)
	if err != nil {
		shared.adminErr = err
		return nil, "", err
	}
	shared.admin, shared.adminURL = pool, raw
	return pool, raw, nil
}

// connectAdmin opens and pings a pool on raw, or explains how to get a server.
func connectAdmin(ctx context.Context, raw string) (*pgxpool.Pool, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("pgtest: %s is not set; these tests need a real PostgreSQL: %s", EnvURL, howTo)
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s=%s is not a valid connection string (%v): %s", EnvURL, redact(raw), err, howTo)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgtest: open %s: %v: %s", redact(raw), err, howTo)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgtest: cannot reach PostgreSQL at %s=%s: %v\nTo get one: %s", EnvURL, redact(raw), err, howTo)
	}
	return pool, nil
}

// ensureTemplate makes sure the migrated template exists on the server and returns its name.
func ensureTemplate(admin *pgxpool.Pool, baseURL string) (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.template != "" || shared.tplErr != nil {
		return shared.template, shared.tplErr
	}
	name, err := templateName()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	if err := buildTemplate(ctx, admin, baseURL, name); err != nil {
		shared.tplErr = err
		return "", err
	}
	shared.template = name
	return name, nil
}

// buildTemplate creates the template called name unless another binary already has. It builds
// under a temporary name and renames at the end, so the final name only ever refers to a
// complete template, even after a crash halfway.
func buildTemplate(ctx context.Context, admin *pgxpool.Pool, baseURL, name string) (err error) {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire admin connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("take template lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", templateLockKey); uerr != nil {
			// A connection that cannot unlock must not go back to the pool holding the lock.
			_ = conn.Conn().Close(uctx)
			if err == nil {
				err = fmt.Errorf("release template lock: %w", uerr)
			}
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up template %s: %w", name, err)
	}
	if exists {
		return nil
	}

	building := name + "_building"
	if err := dropDatabase(ctx, admin, building); err != nil {
		return fmt.Errorf("remove a half-built template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(building)+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("create %s: %w", building, err)
	}
	if err := migrate(ctx, baseURL, building); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(building)+" RENAME TO "+ident(name)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", building, name, err)
	}
	// No connections: a session left open on a template makes every clone fail.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark %s as a template: %w", name, err)
	}
	return nil
}

// migrate applies the embedded migrations to the database called name.
func migrate(ctx context.Context, baseURL, name string) error {
	u, err := withDatabase(baseURL, name)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, _, err := migrations.Migrate(ctx, conn); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	return nil
}

// dropDatabase drops name if it exists, ending any session still connected to it.
func dropDatabase(ctx context.Context, admin *pgxpool.Pool, name string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// templateName is derived from the embedded migration files, so any change to them yields a new
// template instead of a stale one.
func templateName() (string, error) {
	h := sha256.New()
	h.Write([]byte(templateRecipe))
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash embedded migrations: %w", err)
	}
	return "retention_tpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// dbName makes a unique database name that still says which test owns it.
func dbName(testName string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("pgtest: read random bytes: %v", err))
	}
	label := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(label) > 32 {
		label = label[:32]
	}
	return "retention_test_" + label + "_" + hex.EncodeToString(b[:])
}

// ident quotes a database name for SQL.
func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// withDatabase returns raw pointing at database name instead. raw is a postgres:// URL or a
// keyword/value string.
func withDatabase(raw, name string) (string, error) {
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvURL, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In a keyword/value string the last dbname wins.
	return raw + " dbname=" + name, nil
}

// redact hides a password in raw for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(raw, "password") {
			return "(connection string with a password)"
		}
		return raw
	}
	return u.Redacted()
}
