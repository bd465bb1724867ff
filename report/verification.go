package report

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/convai-retention/retention/internal/pgrows"
)

// VerificationRow is one character's checks with Convai, over all time (not the report's
// period): its verifications (a deletion counts once, however often it was checked) and the
// sessions discover found.
type VerificationRow struct {
	CharacterID string `json:"character_id,omitempty"`
	// Deleted counts the character's deleted rows, refuted ones included.
	Deleted int64 `json:"deleted"`
	// Verified counts the deleted rows a verification found absent and none found present.
	Verified int64 `json:"verified"`
	// Present counts the deleted rows a verification found present: verification failures.
	// Their sessions are sent again by the next run.
	Present int64 `json:"present"`
	// LastVerified is when the last verification of the character was recorded; nil if never.
	LastVerified *time.Time `json:"last_verified,omitempty"`
	// Discovered counts the sessions found at Convai that the app had not stored, added by
	// retention discover.
	Discovered int64 `json:"discovered"`
	// InMemory counts the deleted rows whose session a list showed with is_added_to_memory
	// true (retention.deleted_in_memory: a verification's, a run's or discover's list): Convai drew
	// long-term memory from it, which deleting its chat history is not known to remove. A session
	// no list showed so may have gone into memory all the same.
	InMemory int64 `json:"in_memory"`
	// InMemoryErased counts those of InMemory whose end user's memory of the character was
	// erased (retention.memory_erasures, erased) after the deletion.
	InMemoryErased int64 `json:"in_memory_erased"`
	// InMemoryEndUserUnknown counts those of InMemory whose end user is not known: their memory
	// cannot be erased by end user. The rest of InMemory is known and not erased.
	InMemoryEndUserUnknown int64 `json:"in_memory_end_user_unknown"`
}

// InMemoryLeft counts the deleted rows that went into memory with no erasure of it since,
// whether their end user is known or not.
func (v VerificationRow) InMemoryLeft() int64 { return v.InMemory - v.InMemoryErased }

// Coverage is Verified / Deleted, 0 without deletions.
func (v VerificationRow) Coverage() float64 {
	if v.Deleted == 0 {
		return 0
	}
	return float64(v.Verified) / float64(v.Deleted)
}

const verificationSQL = `
	WITH d AS (
	    SELECT character_id, count(*) AS deleted
	    FROM retention.deletions x
	    WHERE status = 'deleted' AND ($1::text = '' OR character_id = $1::text)
	    GROUP BY 1
	), m AS (
	    SELECT character_id, count(*) AS in_memory,
	           count(*) FILTER (WHERE memory_erased_at IS NOT NULL) AS erased,
	           count(*) FILTER (WHERE end_user_id IS NULL) AS unknown
	    FROM retention.deleted_in_memory
	    WHERE $1::text = '' OR character_id = $1::text
	    GROUP BY 1
	), per_deletion AS (
	    SELECT x.character_id, x.deletion_id,
	           bool_or(x.result = 'present') AS present, bool_or(x.result = 'absent') AS absent,
	           max(b.recorded_at) AS last
	    FROM retention.verifications x
	    JOIN retention.verification_batches b ON b.seq = x.batch_seq
	    WHERE $1::text = '' OR x.character_id = $1::text
	    GROUP BY 1, 2
	), v AS (
	    SELECT character_id, count(*) FILTER (WHERE absent AND NOT present) AS verified,
	           count(*) FILTER (WHERE present) AS present, max(last) AS last
	    FROM per_deletion GROUP BY 1
	), f AS (
	    SELECT character_id, count(*) AS discovered FROM retention.discoveries
	    WHERE $1::text = '' OR character_id = $1::text
	    GROUP BY 1
	)
	SELECT character_id, coalesce(d.deleted, 0), coalesce(v.verified, 0), coalesce(v.present, 0), v.last,
	       coalesce(f.discovered, 0), coalesce(m.in_memory, 0), coalesce(m.erased, 0), coalesce(m.unknown, 0)
	FROM d FULL JOIN v USING (character_id) FULL JOIN f USING (character_id) LEFT JOIN m USING (character_id)
	ORDER BY 1`

func (q query) verification(ctx context.Context, r *Report) error {
	r.Verification = []VerificationRow{}
	var v VerificationRow
	return pgrows.Each(ctx, q.tx, "read verifications", verificationSQL, []any{q.o.Character},
		[]any{&v.CharacterID, &v.Deleted, &v.Verified, &v.Present, &v.LastVerified, &v.Discovered, &v.InMemory,
			&v.InMemoryErased, &v.InMemoryEndUserUnknown}, func() {
			row := v
			row.LastVerified = utcPtr(row.LastVerified)
			r.Verification = append(r.Verification, row)
			r.VerificationTotal.add(row)
		})
}

// add adds row's counts to the totals row t; its LastVerified is the latest of the rows'.
func (t *VerificationRow) add(row VerificationRow) {
	t.Deleted += row.Deleted
	t.Verified += row.Verified
	t.Present += row.Present
	t.Discovered += row.Discovered
	t.InMemory += row.InMemory
	t.InMemoryErased += row.InMemoryErased
	t.InMemoryEndUserUnknown += row.InMemoryEndUserUnknown
	if row.LastVerified != nil && (t.LastVerified == nil || row.LastVerified.After(*t.LastVerified)) {
		t.LastVerified = row.LastVerified
	}
}

// VerificationText says the verification totals in words; the table and the HTML both print it.
func (r *Report) VerificationText() string {
	t := r.VerificationTotal
	return fmt.Sprintf("%d of %d deleted sessions, %d found present; %d sessions found at Convai that the app had not stored; "+
		"%d deleted sessions had gone into long-term memory, as Convai's list said (%d with their end user's memory erased since, "+
		"%d whose end user is not known)",
		t.Verified, t.Deleted, t.Present, t.Discovered, t.InMemory, t.InMemoryErased, t.InMemoryEndUserUnknown)
}

// writeVerificationText writes the verification section of the table format.
func (r *Report) writeVerificationText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "\nVerified against Convai's list (all time): %s\n", r.VerificationText()); err != nil {
		return err
	}
	if len(r.Verification) == 0 {
		return nil
	}
	tw := newTable(w, "CHARACTER\tDELETED\tVERIFIED\tCOVERAGE\tFOUND PRESENT\tLAST VERIFIED\tDISCOVERED\tIN MEMORY\tMEMORY ERASED\tEND USER UNKNOWN")
	row := func(name string, v VerificationRow) {
		last := "never"
		if v.LastVerified != nil {
			last = v.LastVerified.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", name, v.Deleted, v.Verified, percent(v.Coverage()), v.Present, last,
			v.Discovered, v.InMemory, v.InMemoryErased, v.InMemoryEndUserUnknown)
	}
	for _, v := range r.Verification {
		row(printable(v.CharacterID), v)
	}
	row("(total)", r.VerificationTotal)
	return tw.Flush()
}
