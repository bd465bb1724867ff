// Package report builds the compliance evidence an officer or auditor asks for, from the views of
// migration 003 (the views a BI tool reads, so the two cannot disagree): per character, what was
// deleted, how long after expiry and how much of it late, what failed, what is still waiting and
// what is overdue now; the runs; a daily series; the holds that match no session; and, for one
// session, every attempt and why it was or was not deleted.
//
// Build reads one Report, the model every format renders: a table, CSV, JSON or one
// self-contained HTML file. What the table and the HTML say in words (Report.Statements) and the
// commands they tell the reader to run (Report.Checks) are made once, from the model, for both.
package report

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/convai-retention/retention/internal/natural"
	"github.com/convai-retention/retention/internal/pgrows"
)

// DefaultSLA is how long a session may stay expired before it counts as overdue.
const DefaultSLA = 7 * 24 * time.Hour

// DefaultSource is the session source the live counts read when none is named.
var DefaultSource = pgx.Identifier{"retention", "sessions"}

// Options says what to report on.
type Options struct {
	// Since and Until bound the period, Since included, Until not. Outcomes count by the time
	// they were completed, runs by the time they started. Required.
	Since, Until time.Time
	// Character narrows the report to one character. Default: all.
	Character string
	// Source is the session source of the live counts (outstanding, held, overdue), a relation
	// the caller has checked. Default DefaultSource.
	Source pgx.Identifier
	// SLA is how long a session may stay expired and not deleted before it is overdue.
	// Default DefaultSLA.
	SLA time.Duration
	// SyncedFrom names the app's source the job's own set (Source) is synced from; empty when
	// the set is the source itself. The report then says how current the set is.
	SyncedFrom string
}

func (o Options) withDefaults() Options {
	if len(o.Source) == 0 {
		o.Source = DefaultSource
	}
	o.SLA = cmp.Or(o.SLA, DefaultSLA)
	return o
}

// Report is the compliance report of one period.
type Report struct {
	// GeneratedAt is the database's clock when the report was read: the live counts are as of
	// then, whatever the period.
	GeneratedAt time.Time `json:"generated_at"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	Character   string    `json:"character,omitempty"`
	Source      string    `json:"source"`
	SLASeconds  float64   `json:"sla_seconds"`
	// Characters has one row per character with an outcome in the period, a session waiting now,
	// or a policy of its own; sorted by ID.
	Characters []CharacterRow `json:"characters"`
	// Total sums the characters; its lag percentiles are over all the deletions of the period.
	Total CharacterRow `json:"total"`
	Runs  []RunRow     `json:"runs"`
	// Days has one row per UTC day of the period.
	Days  []DayRow  `json:"days"`
	Chain ChainHead `json:"chain"`
	// Verification has one row per character with a deletion or a verification, over all time.
	Verification      []VerificationRow `json:"verification"`
	VerificationTotal VerificationRow   `json:"verification_total"`
	// Erasures has every erasure request not completed, and those completed in the period.
	Erasures      []ErasureRow  `json:"erasure_requests"`
	ErasureTotals ErasureTotals `json:"erasure_totals"`
	// UnmatchedHolds are the active holds (of Character, if set) that match no row of the
	// source now: they protect nothing, and a typo is the likely cause. Sorted by ID.
	UnmatchedHolds []HoldRow `json:"unmatched_holds"`
	// Checks are the commands the report tells its reader to run, against the same database,
	// to check what it states.
	Checks []Check `json:"checks"`
	// Sync says how current the job's own set is, when it is synced from an app's source.
	Sync *SyncState `json:"sync,omitempty"`
}

// SLA returns the service level the report was made with.
func (r *Report) SLA() time.Duration { return time.Duration(r.SLASeconds * float64(time.Second)) }

// CharacterRow is one character's figures (or the totals).
type CharacterRow struct {
	CharacterID string `json:"character_id,omitempty"`
	// Policy is the policy in force now; empty for the totals.
	Policy *PolicyInForce `json:"policy,omitempty"`
	// Deleted counts the sessions confirmed deleted in the period.
	Deleted int64 `json:"deleted"`
	// DeletedLate counts the deletions of the period confirmed more than the SLA after the
	// session expired (lag > SLA): each was overdue before it was deleted. A deletion under an
	// erasure request has no expiry and is never late here; the request has its own due time.
	DeletedLate int64 `json:"deleted_late"`
	// Failed counts the sessions with a failed attempt in the period that are not deleted now.
	Failed int64 `json:"failed_not_deleted"`
	// Outstanding counts the sessions expired now and not deleted, that no hold protects.
	Outstanding int64 `json:"outstanding"`
	// Held counts the sessions expired now that an active hold protects.
	Held int64 `json:"held"`
	// Overdue counts the outstanding sessions expired for longer than the SLA, now (as of
	// GeneratedAt, whatever the period).
	Overdue int64 `json:"overdue"`
	// Lag is from expiry (last_active_at + max_age, as recorded) to confirmed deletion, over the
	// deletions of the period, in seconds; nil without deletions. Percentiles are
	// percentile_disc: 95 % of the deletions took at most LagP95.
	LagP50 *float64 `json:"lag_p50_seconds"`
	LagP95 *float64 `json:"lag_p95_seconds"`
	LagMax *float64 `json:"lag_max_seconds"`
}

// PolicyInForce is the policy that applies to a character now, with the job's precedence.
type PolicyInForce struct {
	// Decision is own_policy, default_policy, disabled or no_policy.
	Decision string `json:"decision"`
	PolicyID *int64 `json:"policy_id,omitempty"`
	// MaxAge is the policy's max_age as PostgreSQL prints it, e.g. "30 days".
	MaxAge string `json:"max_age,omitempty"`
	// HeldBy is the active hold on the whole character, if any: then nothing of it is deleted.
	HeldBy *int64 `json:"held_by,omitempty"`
}

// String describes the policy in a few words, e.g. "own policy 3: 7 days".
func (p *PolicyInForce) String() string {
	if p == nil {
		return ""
	}
	var s string
	switch p.Decision {
	case "own_policy":
		s = fmt.Sprintf("own policy %d: %s", deref(p.PolicyID), p.MaxAge)
	case "default_policy":
		s = fmt.Sprintf("default policy %d: %s", deref(p.PolicyID), p.MaxAge)
	case "disabled":
		s = fmt.Sprintf("own policy %d disabled: never", deref(p.PolicyID))
	default:
		s = "no policy: never"
	}
	if p.HeldBy != nil {
		s += fmt.Sprintf("; held by hold %d", *p.HeldBy)
	}
	return s
}

// RunRow is one run that started in the period.
type RunRow struct {
	RunID      int64      `json:"run_id"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// DurationSeconds is nil while the run is running.
	DurationSeconds *float64 `json:"duration_seconds"`
	ShardIndex      int      `json:"shard_index"`
	ShardCount      int      `json:"shard_count"`
	Selected        int64    `json:"selected"`
	Deleted         int64    `json:"deleted"`
	Failed          int64    `json:"failed"`
	Skipped         int64    `json:"skipped"`
	BudgetReached   bool     `json:"budget_reached"`
	Error           string   `json:"error,omitempty"`
}

// DayRow is one UTC day of the period.
type DayRow struct {
	Day string `json:"day"` // YYYY-MM-DD
	// Deleted and Failed count the outcomes completed that day (a session that failed twice
	// counts twice).
	Deleted int64 `json:"deleted"`
	Failed  int64 `json:"failed"`
	// Backlog and Overdue are reconstructed for the end of the day (or Until, or now, whichever
	// comes first): sessions expired and not yet deleted, and those of them past the SLA. They
	// are derived from the deletions recorded since the period began and from the sessions
	// waiting now, under the policies and holds of now: a session removed from the source
	// without the job, or held for a while in the past, is not seen as such. A session overdue
	// at the end of a day and deleted since counts in DeletedLate on the day it was deleted.
	Backlog int64 `json:"backlog"`
	Overdue int64 `json:"overdue"`
	// DeletedLate counts the deletions confirmed that day more than the SLA after the session
	// expired; the days' DeletedLate add up to the total's.
	DeletedLate int64 `json:"deleted_late"`
}

// ChainHead is where the results trail stood when the report was read: the v1 chain's last
// seal and the v2 log's size and root. Compare it with `retention audit verify`, which checks
// both.
type ChainHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// LogSize and LogRoot are the v2 log's head: leaves (recorded claims, memory erasures and
	// memory deletions) and root.
	LogSize int64  `json:"log_size"`
	LogRoot string `json:"log_root"`
}

// Beginner starts transactions; *pgxpool.Pool and *pgx.Conn are Beginners.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Build reads the report in one read-only, repeatable-read transaction, so every figure is of
// the same moment.
func Build(ctx context.Context, db Beginner, o Options) (*Report, error) {
	o = o.withDefaults()
	if !o.Until.After(o.Since) {
		return nil, fmt.Errorf("empty period: until %s is not after since %s", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339))
	}
	r := &Report{Since: o.Since.UTC(), Until: o.Until.UTC(), Character: o.Character, Source: strings.Join(o.Source, "."),
		SLASeconds: o.SLA.Seconds()}
	err := readOnly(ctx, db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&r.GeneratedAt); err != nil {
			return fmt.Errorf("read database clock: %w", err)
		}
		r.GeneratedAt = r.GeneratedAt.UTC()
		q := query{tx: tx, o: o}
		for _, step := range []func(context.Context, *Report) error{q.characters, q.total, q.runs, q.days, q.chain, q.verification,
			q.erasures, q.unmatchedHolds, q.sync} {
			if err := step(ctx, r); err != nil {
				return err
			}
		}
		r.Checks = checks(r.Chain)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.order()
	return r, nil
}

// order puts the rows as every format shows them: the characters with exceptions first (sessions
// failed or overdue, then held), then the others, each by ID in natural order (big-2 before
// big-10); the verification rows in natural order.
func (r *Report) order() {
	rank := func(c CharacterRow) int {
		switch {
		case c.Failed > 0 || c.Overdue > 0:
			return 0
		case c.Held > 0:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(r.Characters, func(a, b CharacterRow) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return natural.Compare(a.CharacterID, b.CharacterID)
	})
	slices.SortStableFunc(r.Verification, func(a, b VerificationRow) int { return natural.Compare(a.CharacterID, b.CharacterID) })
}

// readOnly runs fn in a read-only, repeatable-read transaction with PostgreSQL's own interval
// style, so max_age prints the same whatever the server's settings.
func readOnly(ctx context.Context, db Beginner, fn func(pgx.Tx) error) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	if _, err := tx.Exec(ctx, `SET LOCAL IntervalStyle = 'postgres'`); err != nil {
		return fmt.Errorf("set interval style: %w", err)
	}
	return fn(tx)
}

// utcPtr returns t in UTC, nil for nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// query runs the report's statements in one transaction.
type query struct {
	tx pgx.Tx
	o  Options
}

func (q query) sla() pgtype.Interval {
	return pgtype.Interval{Microseconds: q.o.SLA.Microseconds(), Valid: true}
}

func (q query) characters(ctx context.Context, r *Report) error {
	r.Characters = []CharacterRow{}
	var c CharacterRow
	var p PolicyInForce
	var maxAge *string
	return pgrows.Each(ctx, q.tx, "read per-character figures", charactersSQL,
		[]any{q.o.Since, q.o.Until, q.o.Character, q.o.Source.Sanitize(), q.sla()},
		[]any{&c.CharacterID, &p.Decision, &p.PolicyID, &maxAge, &p.HeldBy,
			&c.Deleted, &c.DeletedLate, &c.Failed, &c.Outstanding, &c.Held, &c.Overdue, &c.LagP50, &c.LagP95, &c.LagMax,
		}, func() {
			row, pol := c, p
			if maxAge != nil && (pol.Decision == "own_policy" || pol.Decision == "default_policy") {
				pol.MaxAge = *maxAge
			}
			row.Policy = &pol
			r.Characters = append(r.Characters, row)
			r.Total.add(row)
		})
}

// add adds row's counts to the totals row t (its lag is read apart: see total).
func (t *CharacterRow) add(row CharacterRow) {
	t.Deleted += row.Deleted
	t.DeletedLate += row.DeletedLate
	t.Failed += row.Failed
	t.Outstanding += row.Outstanding
	t.Held += row.Held
	t.Overdue += row.Overdue
}

func (q query) total(ctx context.Context, r *Report) error {
	err := q.tx.QueryRow(ctx, totalLagSQL, q.o.Since, q.o.Until, q.o.Character).
		Scan(&r.Total.LagP50, &r.Total.LagP95, &r.Total.LagMax)
	if err != nil {
		return fmt.Errorf("read deletion lag: %w", err)
	}
	return nil
}

func (q query) runs(ctx context.Context, r *Report) error {
	r.Runs = []RunRow{}
	var x RunRow
	return pgrows.Each(ctx, q.tx, "read runs", runsSQL, []any{q.o.Since, q.o.Until},
		[]any{&x.RunID, &x.Status, &x.StartedAt, &x.FinishedAt, &x.DurationSeconds,
			&x.ShardIndex, &x.ShardCount, &x.Selected, &x.Deleted, &x.Failed, &x.Skipped, &x.BudgetReached, &x.Error,
		}, func() {
			row := x
			row.StartedAt, row.FinishedAt = row.StartedAt.UTC(), utcPtr(row.FinishedAt)
			r.Runs = append(r.Runs, row)
		})
}

// days fills one row per UTC day from Since to Until: the outcomes of each day, and the backlog
// at its end, summed from the changes of each day.
func (q query) days(ctx context.Context, r *Report) error {
	first := utcDay(q.o.Since)
	last := utcDay(q.o.Until.Add(-time.Microsecond))
	index := map[string]int{}
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		index[d.Format(time.DateOnly)] = len(r.Days)
		r.Days = append(r.Days, DayRow{Day: d.Format(time.DateOnly)})
	}
	var day time.Time
	var deleted, late, failed int64
	err := pgrows.Each(ctx, q.tx, "read daily outcomes", dailyOutcomesSQL, []any{q.o.Since, q.o.Until, q.o.Character, q.sla()},
		[]any{&day, &deleted, &late, &failed}, func() {
			if i, ok := index[day.Format(time.DateOnly)]; ok {
				r.Days[i].Deleted, r.Days[i].DeletedLate, r.Days[i].Failed = deleted, late, failed
			}
		})
	if err != nil {
		return err
	}

	changes := map[string][2]int64{}
	var before [2]int64 // changes before the first day count from its start
	var backlog, overdue int64
	err = pgrows.Each(ctx, q.tx, "reconstruct daily backlog", backlogChangesSQL,
		[]any{q.o.Since, q.o.Until, q.o.Character, q.o.Source.Sanitize(), q.sla()},
		[]any{&day, &backlog, &overdue}, func() {
			if day.Before(first) {
				before[0] += backlog
				before[1] += overdue
				return
			}
			changes[day.Format(time.DateOnly)] = [2]int64{backlog, overdue}
		})
	if err != nil {
		return err
	}
	run := before
	for i := range r.Days {
		c := changes[r.Days[i].Day]
		run[0] += c[0]
		run[1] += c[1]
		r.Days[i].Backlog, r.Days[i].Overdue = run[0], run[1]
	}
	return nil
}

func (q query) chain(ctx context.Context, r *Report) error {
	var hash []byte
	if err := q.tx.QueryRow(ctx, `SELECT seq, hash FROM retention.seal_head`).Scan(&r.Chain.Seq, &hash); err != nil {
		return fmt.Errorf("read chain head: %w", err)
	}
	r.Chain.Hash = hex.EncodeToString(hash)
	if err := q.tx.QueryRow(ctx, `SELECT size, root FROM retention.log_head`).Scan(&r.Chain.LogSize, &hash); err != nil {
		return fmt.Errorf("read log head: %w", err)
	}
	r.Chain.LogRoot = hex.EncodeToString(hash)
	return nil
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
