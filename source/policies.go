package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy/policyfile"
)

// PlanHorizon is how far ahead a plan looks: it counts the sessions a change makes due now and
// within this much.
const PlanHorizon = 7 * 24 * time.Hour

// Change is one change of a policy file to the policies table.
type Change struct {
	// Op is "insert", "update" or "delete".
	Op string `json:"op"`
	// CharacterID is the policy's character, "" for the default.
	CharacterID string `json:"character_id"`
	// Old is the row before (nil for an insert), New the row after (nil for a delete).
	Old *policyfile.Entry `json:"old,omitempty"`
	New *policyfile.Entry `json:"new,omitempty"`
}

// Impact is what the policies make due in one character's sessions: now and within
// PlanHorizon, under the current policies and under the planned ones (the same when nothing
// is planned), counted as a run selects them: held sessions, sessions already deleted and
// malformed rows are not counted.
type Impact struct {
	CharacterID string `json:"character_id"`
	NowCurrent  int64  `json:"due_now_current"`
	NowPlanned  int64  `json:"due_now_planned"`
	WeekCurrent int64  `json:"due_within_7d_current"`
	WeekPlanned int64  `json:"due_within_7d_planned"`
}

// Plan is the changes a policy file makes, their impact per character, and the source's size.
type Plan struct {
	At             time.Time `json:"at"`
	Source         string    `json:"source"`
	SourceSessions int64     `json:"source_sessions"`
	Changes        []Change  `json:"changes"`
	Impact         []Impact  `json:"impact"`
}

// DueNow is the sessions due now under the planned policies.
func (p *Plan) DueNow() (n int64) {
	for _, i := range p.Impact {
		n += i.NowPlanned
	}
	return n
}

// NewDeletions is the sessions the changes make due now that the current policies do not: per
// character, what the planned policies add.
func (p *Plan) NewDeletions() (n int64) {
	for _, i := range p.Impact {
		n += max(i.NowPlanned-i.NowCurrent, 0)
	}
	return n
}

// DueFunc counts, per character, the sessions a run with cut-off at would select through rd
// (job.Runner.Due): the plan counts with the job's own rules and selection.
type DueFunc func(ctx context.Context, rd job.Reader, at time.Time) (map[string]int64, error)

// ApplyOptions says who applies a file and why (both are recorded in retention.policy_history),
// how to count, and whether to commit.
type ApplyOptions struct {
	Actor, Reason string
	// Due counts what is due; required.
	Due DueFunc
	// Commit decides, seeing the plan, whether the changes are committed; nil commits nothing.
	Commit func(*Plan) (bool, error)
	// Sync, if set, brings the job's own set up to date inside the transaction before anything
	// is measured (an app's source, synced as a run would): committed with the changes, rolled
	// back with them. SourceName, if set, is the Plan's Source.
	Sync       func(ctx context.Context, tx pgx.Tx) error
	SourceName string
}

// PolicyFile returns the policies table as a policy file.
func (s *Store) PolicyFile(ctx context.Context) (*policyfile.File, error) {
	rows, err := s.q.Query(ctx, `SELECT coalesce(character_id, ''), max_age::text, enabled, note FROM retention.policies ORDER BY character_id NULLS FIRST`)
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	f := &policyfile.File{}
	var e policyfile.Entry
	_, err = pgx.ForEachRow(rows, []any{&e.CharacterID, &e.MaxAge, &e.Enabled, &e.Note}, func() error {
		x := e
		if x.IsDefault() {
			f.Default = &x
		} else {
			f.Characters = append(f.Characters, x)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	sort.Slice(f.Characters, func(i, j int) bool { return f.Characters[i].CharacterID < f.Characters[j].CharacterID })
	return f, nil
}

// Plan returns the impact of the policies as they are, changing nothing.
func (s *Store) Plan(ctx context.Context, due DueFunc) (*Plan, error) {
	return s.ApplyPolicies(ctx, nil, ApplyOptions{Due: due})
}

// ApplyPolicies makes the policies table equal to f in one transaction: it writes the changes,
// measures the impact before and after, and commits only when o.Commit says so; otherwise it
// rolls everything back. With f nil it changes nothing and plans the policies as they are. A
// value the schema refuses (a bad interval, under one hour) is a policyfile.ErrorList naming the
// entry's line, and nothing changes.
func (s *Store) ApplyPolicies(ctx context.Context, f *policyfile.File, o ApplyOptions) (*Plan, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after a commit it does nothing
	ts := &Store{pool: s.pool, q: tx, src: s.src, cfg: s.cfg}
	// One apply at a time, and no other change to the policies meanwhile; runs read on.
	if f != nil {
		if _, err := tx.Exec(ctx, `LOCK TABLE retention.policies IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return nil, fmt.Errorf("lock policies: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('retention.actor', $1, true), set_config('retention.reason', $2, true)`,
		o.Actor, o.Reason); err != nil {
		return nil, fmt.Errorf("set actor and reason: %w", err)
	}
	if o.Sync != nil {
		if err := o.Sync(ctx, tx); err != nil {
			return nil, err
		}
	}
	p := &Plan{Source: cmp.Or(o.SourceName, s.src.rel.String()), Changes: []Change{}, Impact: []Impact{}}
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&p.At); err != nil {
		return nil, fmt.Errorf("read database clock: %w", err)
	}
	if p.SourceSessions, err = ts.SourceSize(ctx, job.Shard{Count: 1}); err != nil {
		return nil, err
	}
	current, err := ts.due(ctx, o.Due, p.At)
	if err != nil {
		return nil, err
	}
	planned := current
	if f != nil {
		have, err := ts.PolicyFile(ctx)
		if err != nil {
			return nil, err
		}
		p.Changes = diff(have, f)
		if err := ts.write(ctx, p.Changes); err != nil {
			return nil, err
		}
		if planned, err = ts.due(ctx, o.Due, p.At); err != nil {
			return nil, err
		}
	}
	chars := map[string]bool{}
	for c := range current {
		chars[c] = true
	}
	for c := range planned {
		chars[c] = true
	}
	for c := range chars {
		p.Impact = append(p.Impact, Impact{CharacterID: c, NowCurrent: current[c][0], WeekCurrent: current[c][1],
			NowPlanned: planned[c][0], WeekPlanned: planned[c][1]})
	}
	sort.Slice(p.Impact, func(i, j int) bool { return p.Impact[i].CharacterID < p.Impact[j].CharacterID })
	if f == nil || o.Commit == nil || len(p.Changes) == 0 {
		return p, nil
	}
	ok, err := o.Commit(p)
	if err != nil || !ok {
		return p, err
	}
	if err := tx.Commit(ctx); err != nil {
		return p, fmt.Errorf("commit policies: %w", err)
	}
	return p, nil
}

// due counts, per character, the sessions due at `at` and within PlanHorizon of it, with the
// job's selection reading through s (inside the plan's transaction).
func (s *Store) due(ctx context.Context, count DueFunc, at time.Time) (map[string][2]int64, error) {
	now, err := count(ctx, s, at)
	if err != nil {
		return nil, fmt.Errorf("count due sessions: %w", err)
	}
	week, err := count(ctx, s, at.Add(PlanHorizon))
	if err != nil {
		return nil, fmt.Errorf("count sessions due within %s: %w", PlanHorizon, err)
	}
	out := make(map[string][2]int64, len(week))
	for c, n := range week {
		out[c] = [2]int64{now[c], n}
	}
	for c, n := range now {
		if _, ok := week[c]; !ok {
			out[c] = [2]int64{n, n}
		}
	}
	return out, nil
}

// diff lists the changes that make have equal to want: updates and inserts in want's order,
// then deletes.
func diff(have, want *policyfile.File) []Change {
	rows := map[string]policyfile.Entry{}
	for _, e := range have.Entries() {
		rows[e.CharacterID] = e
	}
	changes := []Change{}
	for _, e := range want.Entries() {
		e := e
		old, ok := rows[e.CharacterID]
		delete(rows, e.CharacterID)
		switch {
		case !ok:
			changes = append(changes, Change{Op: "insert", CharacterID: e.CharacterID, New: &e})
		case old.MaxAge != e.MaxAge || old.Enabled != e.Enabled || old.Note != e.Note:
			changes = append(changes, Change{Op: "update", CharacterID: e.CharacterID, Old: &old, New: &e})
		}
	}
	for _, e := range have.Entries() {
		if _, gone := rows[e.CharacterID]; gone {
			e := e
			changes = append(changes, Change{Op: "delete", CharacterID: e.CharacterID, Old: &e})
		}
	}
	return changes
}

// write runs the changes. An update whose max_age is the same interval spelled differently
// ("1 week", "7 days") changes the row to the file's spelling.
func (s *Store) write(ctx context.Context, changes []Change) error {
	for _, c := range changes {
		var char *string
		if c.CharacterID != "" {
			char = &c.CharacterID
		}
		var err error
		switch c.Op {
		case "insert":
			_, err = s.q.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age, enabled, note) VALUES ($1, $2::interval, $3, $4)`,
				char, c.New.MaxAge, c.New.Enabled, c.New.Note)
		case "update":
			_, err = s.q.Exec(ctx, `UPDATE retention.policies SET max_age = $2::interval, enabled = $3, note = $4
				WHERE character_id IS NOT DISTINCT FROM $1`, char, c.New.MaxAge, c.New.Enabled, c.New.Note)
		case "delete":
			_, err = s.q.Exec(ctx, `DELETE FROM retention.policies WHERE character_id IS NOT DISTINCT FROM $1`, char)
		}
		if err != nil {
			return entryError(c, err)
		}
	}
	return nil
}

// entryError names the file's line for a value the schema refused.
func entryError(c Change, err error) error {
	var pgErr *pgconn.PgError
	if c.New == nil || !errors.As(err, &pgErr) {
		return fmt.Errorf("%s policy %q: %w", c.Op, c.CharacterID, err)
	}
	who := "the default policy"
	if c.CharacterID != "" {
		who = fmt.Sprintf("character %q", c.CharacterID)
	}
	reason := pgErr.Message
	switch {
	case pgErr.Code == "22007" || pgErr.Code == "22008" || pgErr.Code == "22015": // invalid or out-of-range interval
		reason = fmt.Sprintf("max_age %q is not an interval PostgreSQL reads (%s); write e.g. '30 days'", c.New.MaxAge, pgErr.Message)
	case pgErr.ConstraintName == "policies_max_age_check":
		reason = fmt.Sprintf("max_age %q must be positive, with no negative part, and at most 200 years", c.New.MaxAge)
	}
	return policyfile.ErrorList{{Line: cmp.Or(c.New.MaxAgeLine, c.New.Line), Reason: who + ": " + reason}}
}
