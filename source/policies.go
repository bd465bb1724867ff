package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policyplan"
)

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
	Commit func(*policyplan.Plan) (bool, error)
	// Sync, if set, brings the job's own set up to date inside the transaction before anything
	// is measured (an app's source, synced as a run would): committed with the changes, rolled
	// back with them. SourceName, if set, is the plan's Source.
	Sync       func(ctx context.Context, tx pgx.Tx) error
	SourceName string
}

// PolicyFile returns the policies table as a policy file.
func (s *Store) PolicyFile(ctx context.Context) (*policyfile.File, error) {
	rows, err := s.q.Query(ctx, `SELECT coalesce(character_id, ''), max_age::text, coalesce(memory_max_age::text, ''), enabled, note
		FROM retention.policies ORDER BY character_id NULLS FIRST`)
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	f := &policyfile.File{}
	var e policyfile.Entry
	_, err = pgx.ForEachRow(rows, []any{&e.CharacterID, &e.MaxAge, &e.MemoryMaxAge, &e.Enabled, &e.Note}, func() error {
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
func (s *Store) Plan(ctx context.Context, due DueFunc) (*policyplan.Plan, error) {
	return s.ApplyPolicies(ctx, nil, ApplyOptions{Due: due})
}

// ApplyPolicies makes the policies table equal to f in one transaction: it writes the changes,
// measures the impact before and after, and commits only when o.Commit says so; otherwise it
// rolls everything back. With f nil it changes nothing and plans the policies as they are. A
// value the schema refuses (a bad interval, under one hour) is a policyfile.ErrorList naming the
// entry's line, and nothing changes.
func (s *Store) ApplyPolicies(ctx context.Context, f *policyfile.File, o ApplyOptions) (*policyplan.Plan, error) {
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
	p := &policyplan.Plan{Source: cmp.Or(o.SourceName, s.src.rel.String()), Changes: []policyplan.Change{}, Impact: []policyplan.Impact{}}
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
	have, err := ts.PolicyFile(ctx)
	if err != nil {
		return nil, err
	}
	if f != nil {
		p.Changes = policyplan.Diff(have, f)
		if err := ts.write(ctx, p.Changes); err != nil {
			return nil, err
		}
		if planned, err = ts.due(ctx, o.Due, p.At); err != nil {
			return nil, err
		}
		have = f
	}
	p.Impact = policyplan.Impacts(current, planned)
	p.MemoryPolicies = policyplan.MemoryPolicies(have)
	if p.Memory, err = ts.memoryPlan(ctx, p.At, len(p.MemoryPolicies) > 0); err != nil {
		return nil, err
	}
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

// memoryPlan is the memory retention of the policies as s sees them (planned, inside the plan's
// transaction) at `at`: per character an end user was seen with whose policy in force sets
// memory_max_age, its end users and those a hold blocks with it. some says whether a policy sets
// memory_max_age at all; when none does it reads nothing.
func (s *Store) memoryPlan(ctx context.Context, at time.Time, some bool) ([]policyplan.Memory, error) {
	out := []policyplan.Memory{}
	if !some {
		return out, nil
	}
	rows, err := s.q.Query(ctx, `
		SELECT m.character_id, m.policy_id, m.memory_max_age::text, m.threshold, count(*),
		       count(*) FILTER (WHERE retention.end_user_holds(u.end_user_id, m.character_id) IS NOT NULL)
		FROM retention.memory_policies($1) m
		JOIN retention.end_users u ON u.character_id = m.character_id
		GROUP BY m.character_id, m.policy_id, m.memory_max_age, m.threshold
		ORDER BY m.character_id`, at)
	if err != nil {
		return nil, fmt.Errorf("read memory policies: %w", err)
	}
	var m policyplan.Memory
	_, err = pgx.ForEachRow(rows, []any{&m.CharacterID, &m.PolicyID, &m.MemoryMaxAge, &m.Threshold, &m.EndUsers, &m.Held}, func() error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read memory policies: %w", err)
	}
	return out, nil
}

// due counts, per character, the sessions due at `at` and within policyplan.Horizon of it,
// with the job's selection reading through s (inside the plan's transaction).
func (s *Store) due(ctx context.Context, count DueFunc, at time.Time) (map[string]policyplan.Due, error) {
	now, err := count(ctx, s, at)
	if err != nil {
		return nil, fmt.Errorf("count due sessions: %w", err)
	}
	within, err := count(ctx, s, at.Add(policyplan.Horizon))
	if err != nil {
		return nil, fmt.Errorf("count sessions due within %s: %w", policyplan.Horizon, err)
	}
	return policyplan.Dues(now, within), nil
}

// write runs the changes. An update whose max_age is the same interval spelled differently
// ("1 week", "7 days") changes the row to the file's spelling. An entry without memory_max_age
// writes NULL: the file is the whole truth.
func (s *Store) write(ctx context.Context, changes []policyplan.Change) error {
	for _, c := range changes {
		var char *string
		if c.CharacterID != "" {
			char = &c.CharacterID
		}
		var err error
		switch c.Op {
		case "insert":
			_, err = s.q.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age, enabled, note, memory_max_age)
				VALUES ($1, $2::interval, $3, $4, nullif($5, '')::interval)`,
				char, c.New.MaxAge, c.New.Enabled, c.New.Note, c.New.MemoryMaxAge)
		case "update":
			_, err = s.q.Exec(ctx, `UPDATE retention.policies SET max_age = $2::interval, enabled = $3, note = $4,
				memory_max_age = nullif($5, '')::interval
				WHERE character_id IS NOT DISTINCT FROM $1`, char, c.New.MaxAge, c.New.Enabled, c.New.Note, c.New.MemoryMaxAge)
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
func entryError(c policyplan.Change, err error) error {
	var pgErr *pgconn.PgError
	if c.New == nil || !errors.As(err, &pgErr) {
		return fmt.Errorf("%s policy %q: %w", c.Op, c.CharacterID, err)
	}
	who := "the default policy"
	if c.CharacterID != "" {
		who = fmt.Sprintf("character %q", c.CharacterID)
	}
	reason, line := pgErr.Message, cmp.Or(c.New.MaxAgeLine, c.New.Line)
	// A refused interval names its text; when it is memory_max_age's, the mistake is that one's.
	memory := c.New.MemoryMaxAge != "" && c.New.MemoryMaxAge != c.New.MaxAge &&
		strings.Contains(pgErr.Message, fmt.Sprintf("%q", c.New.MemoryMaxAge))
	switch {
	case pgErr.Code == "22007" || pgErr.Code == "22008" || pgErr.Code == "22015": // invalid or out-of-range interval
		key, text := "max_age", c.New.MaxAge
		if memory {
			key, text, line = "memory_max_age", c.New.MemoryMaxAge, cmp.Or(c.New.MemoryMaxAgeLine, c.New.Line)
		}
		reason = fmt.Sprintf("%s %q is not an interval PostgreSQL reads (%s); write e.g. '30 days'", key, text, pgErr.Message)
	case pgErr.ConstraintName == "policies_max_age_check":
		reason = fmt.Sprintf("max_age %q must be positive, with no negative part, and at most 200 years", c.New.MaxAge)
	case pgErr.ConstraintName == "policies_memory_max_age_check":
		line = cmp.Or(c.New.MemoryMaxAgeLine, c.New.Line)
		reason = fmt.Sprintf("memory_max_age %q must be at least one hour, with no negative part, and at most 200 years", c.New.MemoryMaxAge)
	}
	return policyfile.ErrorList{{Line: line, Reason: who + ": " + reason}}
}
