package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policytest"
)

// A file with mistakes of every kind, of its shape and of its values, names them all at once,
// each at FILE:LINE with the hint that fits it, and changes nothing.
func TestPolicyApplyEveryMistakeInOnePass(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	before := b.policies(t)
	file := writeFile(t, `default:
  max_age: 30 days
  colour: red
characters:
  a:
    max_age: 10 minutes
  b:
    max_age: -1 day
  c:
    max_age: thirty days
  d:
    max_age: "30"
  e:
    max_age: 1 mon -2 days
  f:
    max_age: 1 year
`)
	r := b.run(t, "policy", "apply", "-f", file, "--dry-run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	for _, w := range []string{
		file + `:3: the default policy: unknown key "colour"`,
		file + `:6: character "a": max_age '00:10:00' is under one hour ("10 minutes")`,
		file + `:8: character "b": max_age '-1 days' is not positive`,
		file + `:10: character "c": max_age "thirty days" is not an interval PostgreSQL reads`,
		file + `:12: character "d": max_age 30 has no unit: PostgreSQL would read it as seconds`,
		file + `:14: character "e": max_age '1 mon -2 days' has a negative part`,
	} {
		require.Contains(t, r.stderr, w)
	}
	require.Equal(t, 6, strings.Count(r.stderr, file+":"), "%s", r.stderr)
	line6 := r.stderr[strings.Index(r.stderr, file+":6:"):]
	line6 = line6[:strings.Index(line6, "\n")]
	require.NotContains(t, line6, "seconds", "a value with a unit gets no hint about a missing unit")
	require.Contains(t, r.stderr, "nothing changed")
	require.Equal(t, before, b.policies(t))
}

// The mistakes of a file's shape are named without the database: with none to reach, the
// operator still gets every one of them, and exit 2, not the connection's exit 5.
func TestPolicyApplyShapeMistakesWithoutDatabase(t *testing.T) {
	t.Parallel()
	env := with(offline(t), "DATABASE_URL", "postgres://127.0.0.1:1/x")
	file := writeFile(t, `default:
  max_age: 30 days
  max_age: 7 days
characters:
  a:
    max_age: 1 day
    enabled: sometimes
  b:
    max_age: 1 day
    colour: red
  a:
    max_age: 2 days
`)
	r := run(t, env, "policy", "apply", "-f", file, "--dry-run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	for _, w := range []string{
		file + `:3: the default policy: max_age appears twice`,
		file + `:7: character "a": enabled must be true or false, not "sometimes"`,
		file + `:10: character "b": unknown key "colour"`,
		file + `:11: character "a" appears twice (first on line 5)`,
	} {
		require.Contains(t, r.stderr, w)
	}
	require.Equal(t, 4, strings.Count(r.stderr, file+":"), "%s", r.stderr)
	require.Contains(t, r.stderr, "the max_age values were not read", "%s", r)

	// A file of the right shape needs the database for its intervals: then the connection's
	// error it is.
	r = run(t, env, "policy", "apply", "-f", writeFile(t, "default:\n  max_age: 30 days\n"), "--dry-run")
	require.Equal(t, exitcode.Fatal, r.code, "%s", r)
}

// A file of 2,000 characters, each with its own max_age, some of them wrong: every wrong one is
// named at its line, and nothing changes.
func TestPolicyApplyManyEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	before := b.policies(t)
	var f strings.Builder
	f.WriteString("default:\n  max_age: 30 days\ncharacters:\n")
	var want []string
	for i := range 2000 {
		maxAge := fmt.Sprintf("%d days", i+1)
		switch {
		case i%250 == 7:
			maxAge = fmt.Sprintf("%d fortnights", i)
			want = append(want, fmt.Sprintf(`:%d: character "c%04d": max_age "%s" is not an interval PostgreSQL reads`, 5+2*i, i, maxAge))
		case i%250 == 100:
			maxAge = fmt.Sprintf("%d minutes", 1+i%59)
			want = append(want, fmt.Sprintf(`:%d: character "c%04d": max_age '00:%02d:00' is under one hour`, 5+2*i, i, 1+i%59))
		}
		fmt.Fprintf(&f, "  c%04d:\n    max_age: %s\n", i, maxAge)
	}
	file := writeFile(t, f.String())
	r := b.run(t, "policy", "apply", "-f", file)
	require.Equal(t, exitcode.Usage, r.code, "%.2000s", r)
	for _, w := range want {
		require.Contains(t, r.stderr, file+w)
	}
	require.Equal(t, len(want), strings.Count(r.stderr, file+":"), "%s", r.stderr)
	require.Equal(t, before, b.policies(t))
}

// The intervals of a file are read in one round trip, however many there are, and a value
// PostgreSQL refuses fails only itself.
func TestIntervalsReadInOneRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(b.db.URL)
	require.NoError(t, err)
	var writes atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		return countingConn{Conn: c, writes: &writes}, err
	}
	cfg.HealthCheckPeriod = time.Hour
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(ctx))

	var texts []string
	for i := range 2000 {
		texts = append(texts, fmt.Sprintf("%d days", i+2), fmt.Sprintf("%d fortnights", i+2))
	}
	before := writes.Load()
	got, err := intervalReader(ctx, pool)(texts)
	require.NoError(t, err)
	// One write sends every statement; a second may be the pool's check of an idle connection.
	require.LessOrEqual(t, writes.Load()-before, int64(2))
	require.Len(t, got, len(texts))
	for i := range 2000 {
		require.Equal(t, policyfile.Reading{Text: fmt.Sprintf("%d days", i+2), Interval: policy.Interval{Days: int32(i + 2)}},
			got[fmt.Sprintf("%d days", i+2)])
		require.Contains(t, got[fmt.Sprintf("%d fortnights", i+2)].Invalid, "invalid input syntax for type interval")
	}
	// The connection is back in the pool, usable.
	var one int
	require.NoError(t, pool.QueryRow(ctx, `SELECT 1`).Scan(&one))
}

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// The rule of policy.CheckMaxAge is the table's: PostgreSQL reads every case's text as the
// case's interval, and retention.policies refuses exactly the cases with a fault.
func TestMaxAgeRuleIsTheTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	texts := []string{"thirty days"}
	for _, c := range policytest.MaxAgeCases {
		texts = append(texts, c.Text)
	}
	read, err := intervalReader(ctx, b.db.Pool)(texts)
	require.NoError(t, err)
	for i, c := range policytest.MaxAgeCases {
		r := read[c.Text]
		require.Empty(t, r.Invalid, c.Text)
		require.Equal(t, c.Interval, r.Interval, c.Text)

		tx, err := b.db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ($1, $2::text::interval)`,
			fmt.Sprintf("case-%d", i), c.Text)
		require.NoError(t, tx.Rollback(ctx))
		if c.Fault == policy.MaxAgeOK {
			require.NoError(t, err, c.Text)
		} else {
			require.Error(t, err, "%s: the Go rule finds fault %d, the table takes it", c.Text, c.Fault)
		}
	}
	require.Contains(t, read["thirty days"].Invalid, "invalid input syntax for type interval")
}
