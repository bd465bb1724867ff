package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/policy"
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

// The rule of policy.CheckMaxAge is the table's: PostgreSQL reads every case's text as the
// case's interval, and retention.policies refuses exactly the cases with a fault.
func TestMaxAgeRuleIsTheTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	read := intervalReader(ctx, b.db.Pool)
	for i, c := range policytest.MaxAgeCases {
		r, err := read(c.Text)
		require.NoError(t, err)
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
	r, err := read("thirty days")
	require.NoError(t, err)
	require.Contains(t, r.Invalid, "invalid input syntax for type interval")
}
