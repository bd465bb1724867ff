package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/policy/policytest"
)

// The SQL functions of the migrations (retention.well_formed_id, policy_for, expiry_threshold,
// expired_sessions_in) copy the Go rules of package policy for the report and the BI views. The
// tests below run every case of the rules' tests (policy/policytest) through both and fail on any
// difference, so a rule cannot change in one place only.

// conformance is a migrated database with a source table that, unlike retention.sessions, can
// hold every record a case has (NULL IDs, NULL dates, a session in several rows).
type conformance struct {
	db *pgtest.Database
}

func setupConformance(t *testing.T) *conformance {
	t.Helper()
	db := pgtest.New(t)
	_, err := db.Pool.Exec(context.Background(),
		`CREATE TABLE public.src (character_id text, session_id text, last_active_at timestamptz)`)
	require.NoError(t, err)
	return &conformance{db: db}
}

// inWorld runs fn in a transaction holding the world's policies and holds, rolled back after.
func (c *conformance) inWorld(t *testing.T, w policytest.World, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { require.NoError(t, tx.Rollback(ctx)) }()
	for _, p := range w.Policies {
		_, err := tx.Exec(ctx, `
			INSERT INTO retention.policies (id, character_id, max_age, enabled) OVERRIDING SYSTEM VALUE
			VALUES ($1, NULLIF($2, ''), $3::interval, $4)`, p.ID, p.CharacterID, p.MaxAge, p.Enabled)
		require.NoError(t, err, "policy %d", p.ID)
	}
	for _, h := range w.Holds {
		_, err := tx.Exec(ctx, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ($1, NULLIF($2, ''), 'case')`,
			h.CharacterID, h.SessionID)
		require.NoError(t, err)
	}
	fn(tx)
}

// sqlState is what expired_sessions_in says of the one session in the source: eligible (listed,
// not held), held (listed and held) or none (not listed).
func sqlState(t *testing.T, tx pgx.Tx) string {
	t.Helper()
	rows, err := tx.Query(context.Background(), `SELECT held FROM retention.expired_sessions_in('public.src', $1)`, policytest.Cutoff)
	require.NoError(t, err)
	held, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	require.NoError(t, err)
	require.LessOrEqual(t, len(held), 1, "one session, listed at most once")
	switch {
	case len(held) == 0:
		return "none"
	case held[0]:
		return "held"
	}
	return "eligible"
}

// goState is the same word for a verdict of policy.Set.Judge.
func goState(v policy.Verdict) string {
	switch {
	case v.Eligible:
		return "eligible"
	case v.Skip == policy.SkipHeld:
		return "held"
	}
	return "none"
}

// insertRecord writes r to the source as a run would meet it: empty IDs as NULL, a zero time as
// NULL, a superseded row with a later undated row of the same session, a deleted one with a
// confirmed deletion recorded.
func insertRecord(t *testing.T, tx pgx.Tx, r policy.Record) {
	t.Helper()
	ctx := context.Background()
	var at *time.Time
	if !r.LastActive.IsZero() {
		at = &r.LastActive
	}
	_, err := tx.Exec(ctx, `INSERT INTO public.src VALUES (NULLIF($1, ''), NULLIF($2, ''), $3)`, r.CharacterID, r.SessionID, at)
	require.NoError(t, err)
	if r.Superseded {
		_, err := tx.Exec(ctx, `INSERT INTO public.src VALUES ($1, $2, NULL)`, r.CharacterID, r.SessionID)
		require.NoError(t, err)
	}
	if r.Deleted {
		_, err := tx.Exec(ctx, `
			WITH run AS (INSERT INTO retention.runs (cutoff, source) VALUES ($3, 'public.src') RETURNING id)
			INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age)
			SELECT id, $1, $2, $4, '30 days' FROM run`, r.CharacterID, r.SessionID, policytest.Cutoff, r.LastActive)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `UPDATE retention.deletions_v1 SET status = 'deleted', attempts = 1, http_status = 200,
			completed_at = clock_timestamp() WHERE character_id = $1 AND session_id = $2`, r.CharacterID, r.SessionID)
		require.NoError(t, err)
	}
}

// Every policy of every case: PostgreSQL puts its threshold where the case says, with the
// function the views use and with the expression a run loads its rules with.
func TestSQLThresholdsMatchTheCases(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	ctx := context.Background()
	var worlds []policytest.World
	for _, tt := range policytest.DecideCases {
		worlds = append(worlds, tt.World)
	}
	for _, tt := range policytest.JudgeCases {
		worlds = append(worlds, tt.World)
	}
	seen := map[string]bool{}
	for _, w := range worlds {
		for _, p := range w.Policies {
			if seen[p.MaxAge] {
				continue
			}
			seen[p.MaxAge] = true
			var fn, run time.Time
			require.NoError(t, c.db.Pool.QueryRow(ctx, `
				SELECT retention.expiry_threshold($1::interval, $2),
				       (($2::timestamptz AT TIME ZONE 'UTC') - $1::interval) AT TIME ZONE 'UTC'`,
				p.MaxAge, policytest.Cutoff).Scan(&fn, &run))
			require.True(t, p.Threshold.Equal(fn), "max_age %q: the case says %s, expiry_threshold %s", p.MaxAge, p.Threshold, fn.UTC())
			require.True(t, fn.Equal(run), "max_age %q: expiry_threshold %s, the run's expression %s", p.MaxAge, fn.UTC(), run.UTC())
		}
	}
	require.GreaterOrEqual(t, len(seen), 8, "the cases cover the odd intervals")
}

// Precedence and holds: retention.policy_for decides every character as policy.Set.Decide does.
func TestSQLDecidesAsPolicy(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	for _, tt := range policytest.DecideCases {
		d := tt.World.Set().Decide(tt.Character)
		require.Equal(t, tt.Want, d, "%s: Go", tt.Name)
		c.inWorld(t, tt.World, func(tx pgx.Tx) {
			var decision string
			var policyID, heldBy *int64
			require.NoError(t, tx.QueryRow(context.Background(),
				`SELECT decision, policy_id, held_by FROM retention.policy_for($1)`, tt.Character).
				Scan(&decision, &policyID, &heldBy))
			require.Equal(t, d.Reason == policy.ReasonHeld, heldBy != nil, "%s: held", tt.Name)
			if heldBy == nil {
				require.Equal(t, string(d.Reason), decision, "%s: decision", tt.Name)
			}
			var sqlPolicy int64
			if decision == string(policy.ReasonOwnPolicy) || decision == string(policy.ReasonDefaultPolicy) {
				sqlPolicy = *policyID
			}
			require.Equal(t, d.Policy.ID, sqlPolicy, "%s: the policy that applies", tt.Name)
		})
	}
}

// Expiry at the boundary, odd intervals, holds, records passed over: expired_sessions_in at the
// cases' cut-off lists a session exactly when policy.Set.Judge finds it eligible or held.
func TestSQLJudgesAsPolicy(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	for _, tt := range policytest.JudgeCases {
		want := goState(tt.World.Set().Judge(tt.Record))
		require.Equal(t, goState(policy.Verdict{Eligible: tt.Eligible, Skip: tt.Skip}), want, "%s: Go", tt.Name)
		c.inWorld(t, tt.World, func(tx pgx.Tx) {
			insertRecord(t, tx, tt.Record)
			require.Equal(t, want, sqlState(t, tx), "%s: expired_sessions_in", tt.Name)
		})
	}
}

// Malformed IDs of every kind: well_formed_id agrees with policy.Check on each ID, and
// expired_sessions_in passes over exactly the records Check refuses.
func TestSQLChecksAsPolicy(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	ctx := context.Background()
	world := policytest.World{Policies: []policy.Policy{
		{ID: 1, MaxAge: "30 days", Enabled: true, Threshold: policytest.Days30},
	}}
	stored := 0
	for _, tt := range policytest.CheckCases {
		got := policy.Check(tt.Record)
		require.Equal(t, tt.Want, got, "%s: Go", tt.Name)
		if !tt.Storable() {
			require.Equal(t, policy.SkipMalformed, got, "%s: what PostgreSQL text cannot hold is malformed", tt.Name)
			continue
		}
		stored++
		for _, id := range []string{tt.Record.CharacterID, tt.Record.SessionID} {
			var ok bool
			require.NoError(t, c.db.Pool.QueryRow(ctx, `SELECT retention.well_formed_id(NULLIF($1, ''))`, id).Scan(&ok))
			goOK := policy.Check(policy.Record{CharacterID: id, SessionID: "s", LastActive: policytest.Cutoff}) == policy.SkipNone
			require.Equal(t, goOK, ok, "%s: well_formed_id(%q)", tt.Name, id)
		}
		c.inWorld(t, world, func(tx pgx.Tx) {
			insertRecord(t, tx, tt.Record)
			want := "none"
			if got == policy.SkipNone {
				want = "eligible"
			}
			require.Equal(t, want, sqlState(t, tx), "%s: expired_sessions_in", tt.Name)
		})
	}
	require.Greater(t, stored, 20)
}

// Every code point, alone (blank or not) and between other characters (a control character or
// not): well_formed_id refuses exactly the IDs policy.Check refuses.
func TestSQLRefusesTheIDsPolicyRefuses(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	var sqlAlone, sqlInside []int32
	require.NoError(t, c.db.Pool.QueryRow(context.Background(), `
		SELECT coalesce(array_agg(r) FILTER (WHERE NOT retention.well_formed_id(chr(r))), '{}'),
		       coalesce(array_agg(r) FILTER (WHERE NOT retention.well_formed_id('s' || chr(r) || 's')), '{}')
		FROM generate_series(1, 1114111) r
		WHERE r NOT BETWEEN 55296 AND 57343`).Scan(&sqlAlone, &sqlInside))

	refused := func(id string) bool {
		return policy.Check(policy.Record{CharacterID: "c", SessionID: id, LastActive: policytest.Cutoff}) != policy.SkipNone
	}
	var goAlone, goInside []int32
	for r := rune(1); r <= 0x10ffff; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		if refused(string(r)) {
			goAlone = append(goAlone, r)
		}
		if refused("s" + string(r) + "s") {
			goInside = append(goInside, r)
		}
	}
	slices.Sort(sqlAlone)
	slices.Sort(sqlInside)
	require.Equal(t, runes(goAlone), runes(sqlAlone), "IDs of one character: Go refuses the first, SQL the second")
	require.Equal(t, runes(goInside), runes(sqlInside), "IDs with the character inside: Go refuses the first, SQL the second")
	require.Contains(t, goInside, int32(0x85), "U+0085 is a control character")
}

// runes prints code points as U+XXXX, so a difference reads as characters.
func runes(rs []int32) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%U ", r)
	}
	return b.String()
}

// PostgreSQL's infinities and years BC, which the cases cannot all hold (no Go time is
// infinite): expired_sessions_in passes over such rows without an error and treats them as
// undated, superseding the session's other rows, as a run does; add_discovered refuses them.
func TestSQLPassesOverUnusableDates(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	ctx := context.Background()
	world := policytest.World{Policies: []policy.Policy{
		{ID: 1, MaxAge: "30 days", Enabled: true, Threshold: policytest.Days30},
	}}
	c.inWorld(t, world, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `
			INSERT INTO public.src VALUES
			  ('c', 'inf', 'infinity'), ('c', 'neg', '-infinity'), ('c', 'bc', '4713-01-01 00:00:00+00 BC'),
			  ('c', 'zero', '0001-01-01 00:00:00+00'), ('c', 'ok', $1),
			  ('c', 'neg-later', $1), ('c', 'neg-later', '-infinity'), ('c', 'bc-later', $1), ('c', 'bc-later', '0044-03-15 BC'),
			  ('c', 'inf-later', $1), ('c', 'inf-later', 'infinity')`, policytest.Days30.Add(-time.Hour))
		require.NoError(t, err)
		rows, err := tx.Query(ctx, `SELECT session_id FROM retention.expired_sessions_in('public.src', $1)`, policytest.Cutoff)
		require.NoError(t, err)
		listed, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"ok"}, listed)
	})
	for _, at := range []string{"-infinity", "4713-01-01 00:00:00+00 BC", "0001-01-01 00:00:00+00", "infinity"} {
		_, err := c.db.Pool.Exec(ctx, `SELECT retention.add_discovered('c', ARRAY['s'], ARRAY[$1::timestamptz])`, at)
		require.ErrorContains(t, err, "a last activity is missing, in the future or before the year 1", at)
	}
}
