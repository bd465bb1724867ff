package report

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
)

// ErasureRow is one erasure request: every request not completed (whenever filed), and those
// completed in the report's period.
type ErasureRow struct {
	ID          int64     `json:"id"`
	CharacterID string    `json:"character_id"`
	SessionID   *string   `json:"session_id"` // nil: every session of the character
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	DueAt       time.Time `json:"due_at"`
	// State is open, blocked (an active hold keeps it open), overdue (open past DueAt) or
	// completed.
	State string `json:"state"`
	// Overdue is true for an open or blocked request past DueAt.
	Overdue   bool    `json:"overdue"`
	BlockedBy []int64 `json:"blocked_by,omitempty"`
	// SessionsDeleted counts the sessions confirmed deleted under the request.
	SessionsDeleted int64      `json:"sessions_deleted"`
	CompletedAt     *time.Time `json:"completed_at,omitempty"`
	CompletedByRun  *int64     `json:"completed_by_run,omitempty"`
	// LagSeconds is from the request to its completion.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

// ErasureTotals counts the requests of Erasures by state; LagMax is over the completed ones.
type ErasureTotals struct {
	Open      int      `json:"open"`
	Blocked   int      `json:"blocked"`
	Overdue   int      `json:"overdue"`
	Completed int      `json:"completed"`
	LagMax    *float64 `json:"lag_max_seconds,omitempty"`
}

// readErasures reads the requests of retention.erasure_status that match where (a condition on
// its columns, with args), ordered by order, times in UTC.
func readErasures(ctx context.Context, tx pgx.Tx, where, order string, args ...any) ([]ErasureRow, error) {
	out := []ErasureRow{}
	var e ErasureRow
	err := pgrows.Each(ctx, tx, "read erasure requests", `
		SELECT id, character_id, session_id, reason, requested_by, requested_at, due_at, state, overdue,
		       coalesce(blocked_by, '{}'), sessions_deleted, completed_at, completed_by_run, lag_seconds
		FROM retention.erasure_status
		WHERE `+where+`
		ORDER BY `+order, args,
		[]any{&e.ID, &e.CharacterID, &e.SessionID, &e.Reason, &e.RequestedBy, &e.RequestedAt,
			&e.DueAt, &e.State, &e.Overdue, &e.BlockedBy, &e.SessionsDeleted, &e.CompletedAt, &e.CompletedByRun, &e.LagSeconds}, func() {
			row := e
			row.RequestedAt, row.DueAt, row.CompletedAt = row.RequestedAt.UTC(), row.DueAt.UTC(), utcPtr(row.CompletedAt)
			if len(row.BlockedBy) == 0 {
				row.BlockedBy = nil
			}
			out = append(out, row)
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// erasures reads every request not completed, and those completed in the period, with totals.
func (q query) erasures(ctx context.Context, r *Report) error {
	rows, err := readErasures(ctx, q.tx, `($1::text = '' OR character_id = $1::text)
		  AND (completed_at IS NULL OR (completed_at >= $2 AND completed_at < $3))`,
		`completed_at IS NOT NULL, due_at, id`, q.o.Character, q.o.Since, q.o.Until)
	if err != nil {
		return err
	}
	r.Erasures = rows
	t := &r.ErasureTotals
	for _, row := range rows {
		switch row.State {
		case "completed":
			t.Completed++
			if row.LagSeconds != nil && (t.LagMax == nil || *row.LagSeconds > *t.LagMax) {
				t.LagMax = row.LagSeconds
			}
		case "blocked":
			t.Blocked++
		default:
			t.Open++
		}
		if row.Overdue {
			t.Overdue++
		}
	}
	return nil
}

// Scope says what a request asks for, for people.
func (e ErasureRow) Scope() string {
	if e.SessionID == nil {
		return "every session"
	}
	return printable(*e.SessionID)
}

// StateText is State, with ", overdue" for a blocked request past its due time.
func (e ErasureRow) StateText() string {
	if e.Overdue && e.State != "overdue" {
		return e.State + ", overdue"
	}
	return e.State
}

// BlockedByText lists the blocking holds as "hold 3, hold 7".
func (e ErasureRow) BlockedByText() string {
	parts := make([]string, len(e.BlockedBy))
	for i, id := range e.BlockedBy {
		parts[i] = "hold " + strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ", ")
}

// ErasureText says the erasure totals in words; the table and the HTML both print it.
func (r *Report) ErasureText() string {
	t := r.ErasureTotals
	return fmt.Sprintf("%d open (%d overdue), %d blocked by a hold, %d completed in the period (longest lag %s)",
		t.Open, t.Overdue, t.Blocked, t.Completed, human(t.LagMax))
}

// writeErasureText writes the erasure requests section of the table format.
func (r *Report) writeErasureText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "\nErasure requests: %s\n", r.ErasureText()); err != nil {
		return err
	}
	if len(r.Erasures) == 0 {
		return nil
	}
	tw := newTable(w, "ID\tCHARACTER\tSESSION\tSTATE\tREQUESTED (UTC)\tDUE\tDELETED\tCOMPLETED\tLAG\tBLOCKED BY\tREASON")
	for _, e := range r.Erasures {
		state := e.StateText()
		completed := ""
		if e.CompletedAt != nil {
			completed = e.CompletedAt.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, printable(e.CharacterID), e.Scope(), state,
			e.RequestedAt.Format(time.DateTime), e.DueAt.Format(time.DateTime), e.SessionsDeleted, completed,
			human(e.LagSeconds), e.BlockedByText(), printableText(e.Reason))
	}
	return tw.Flush()
}
