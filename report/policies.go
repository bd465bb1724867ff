package report

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
)

// Policies is the set of retention policies in force at one instant, rebuilt from
// retention.policy_history, each with its version.
type Policies struct {
	AsOf     time.Time       `json:"as_of"`
	Policies []PolicyVersion `json:"policies"`
}

// PolicyVersion is one policy as it was at an instant: its values and the change that made them.
type PolicyVersion struct {
	PolicyID int64 `json:"policy_id"`
	// Version is the policy_history row of the change that gave these values.
	Version     int64   `json:"version"`
	CharacterID *string `json:"character_id"` // nil: the default policy
	MaxAge      string  `json:"max_age"`
	// MemoryMaxAge is nil when the policy kept long-term memory as long as Convai did, and for
	// a version recorded before migration 017, when the history began to record it.
	MemoryMaxAge *string   `json:"memory_max_age"`
	Enabled      bool      `json:"enabled"`
	Note         string    `json:"note"`
	ChangedAt    time.Time `json:"changed_at"`
	ChangedBy    string    `json:"changed_by"`
	Actor        *string   `json:"actor"`
	Reason       *string   `json:"reason"`
}

// PoliciesAsOf returns the policies in force at t (retention.policies_as_of), read in one
// read-only transaction. Changes before the history began (migration 006) are not known: the
// earliest instant it can answer for is that migration's.
func PoliciesAsOf(ctx context.Context, db Beginner, t time.Time) (*Policies, error) {
	p := &Policies{AsOf: t.UTC(), Policies: []PolicyVersion{}}
	err := readOnly(ctx, db, func(tx pgx.Tx) error {
		var v PolicyVersion
		return pgrows.Each(ctx, tx, "read policy history", `
			SELECT policy_id, version, character_id, max_age::text, memory_max_age::text, enabled, note, changed_at,
			       changed_by, actor, reason
			FROM retention.policies_as_of($1)`, []any{t},
			[]any{&v.PolicyID, &v.Version, &v.CharacterID, &v.MaxAge, &v.MemoryMaxAge, &v.Enabled, &v.Note,
				&v.ChangedAt, &v.ChangedBy, &v.Actor, &v.Reason}, func() {
				x := v
				x.ChangedAt = x.ChangedAt.UTC()
				p.Policies = append(p.Policies, x)
			})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Write writes the policies as a table, CSV or JSON; HTML is not offered.
func (p *Policies) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, p)
	case FormatCSV:
		cw := csv.NewWriter(w)
		// memory_max_age is the last column, so that readers of the columns before it by position
		// keep reading the same ones.
		_ = cw.Write([]string{"policy_id", "version", "character_id", "max_age", "enabled", "note", "changed_at",
			"changed_by", "actor", "reason", "memory_max_age"})
		for _, v := range p.Policies {
			_ = cw.Write([]string{strconv.FormatInt(v.PolicyID, 10), strconv.FormatInt(v.Version, 10), orStr(v.CharacterID, ""),
				v.MaxAge, strconv.FormatBool(v.Enabled), v.Note, v.ChangedAt.Format(time.RFC3339Nano), v.ChangedBy,
				orStr(v.Actor, ""), orStr(v.Reason, ""), orStr(v.MemoryMaxAge, "")})
		}
		cw.Flush()
		return cw.Error()
	case FormatHTML:
		return &FormatError{Field: "format", Value: string(f), Want: "table, csv or json for --policies-as-of"}
	}
	fmt.Fprintf(w, "Policies in force at %s (UTC)\n", p.AsOf.Format(time.RFC3339))
	if len(p.Policies) == 0 {
		_, err := fmt.Fprintln(w, "none: no policy was in force, so nothing was deleted")
		return err
	}
	tw := newTable(w, "POLICY\tVERSION\tCHARACTER\tMAX AGE\tMEMORY MAX AGE\tENABLED\tCHANGED AT\tBY\tWHY")
	for _, v := range p.Policies {
		by := v.ChangedBy
		if v.Actor != nil {
			by += " (" + *v.Actor + ")"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", v.PolicyID, v.Version, orStr(v.CharacterID, "(default)"),
			v.MaxAge, orStr(v.MemoryMaxAge, "-"), v.Enabled, stamp(v.ChangedAt), by, orStr(v.Reason, "-"))
	}
	return tw.Flush()
}

// orStr is *p, or def when p is nil.
func orStr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}
