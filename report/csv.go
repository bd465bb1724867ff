package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// csvWriter writes cells a spreadsheet will show as text. A character or session ID, or an
// error text, starting with =, +, -, @, tab or carriage return would otherwise be read as a
// formula by Excel, LibreOffice or Google Sheets (CSV injection); such a cell gets a leading
// apostrophe. Numbers are left alone.
type csvWriter struct{ *csv.Writer }

func newCSV(w io.Writer) csvWriter { return csvWriter{csv.NewWriter(w)} }

func (c csvWriter) Write(record []string) error {
	out := make([]string, len(record))
	for i, cell := range record {
		out[i] = csvCell(cell)
	}
	return c.Writer.Write(out)
}

func csvCell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return "'" + s
}

func (r *Report) writeCSV(w io.Writer, table CSVTable) error {
	cw := newCSV(w)
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch table {
	case CSVRuns:
		_ = cw.Write([]string{"run_id", "status", "started_at", "finished_at", "duration_seconds", "shard_index", "shard_count",
			"selected", "deleted", "failed", "skipped", "budget_reached", "error"})
		for _, x := range r.Runs {
			_ = cw.Write([]string{itoa(x.RunID), x.Status, rfc3339(x.StartedAt), optTime(x.FinishedAt), seconds(x.DurationSeconds),
				strconv.Itoa(x.ShardIndex), strconv.Itoa(x.ShardCount), itoa(x.Selected), itoa(x.Deleted), itoa(x.Failed),
				itoa(x.Skipped), strconv.FormatBool(x.BudgetReached), x.Error})
		}
	case CSVErasures:
		_ = cw.Write([]string{"request_id", "character_id", "session_id", "state", "overdue", "requested_by", "requested_at",
			"due_at", "sessions_deleted", "completed_at", "completed_by_run", "lag_seconds", "blocked_by_holds", "reason"})
		for _, e := range r.Erasures {
			holds := make([]string, len(e.BlockedBy))
			for i, h := range e.BlockedBy {
				holds[i] = itoa(h)
			}
			_ = cw.Write([]string{itoa(e.ID), e.CharacterID, optString(e.SessionID), e.State, strconv.FormatBool(e.Overdue),
				e.RequestedBy, rfc3339(e.RequestedAt), rfc3339(e.DueAt), itoa(e.SessionsDeleted), optTime(e.CompletedAt),
				optInt(e.CompletedByRun), seconds(e.LagSeconds), strings.Join(holds, " "), e.Reason})
		}
	case CSVDays:
		_ = cw.Write([]string{"day", "deleted", "failed", "backlog", "overdue", "deleted_late"})
		for _, d := range r.Days {
			_ = cw.Write([]string{d.Day, itoa(d.Deleted), itoa(d.Failed), itoa(d.Backlog), itoa(d.Overdue), itoa(d.DeletedLate)})
		}
	case CSVVerification:
		_ = cw.Write([]string{"scope", "character_id", "deleted", "verified", "found_present", "last_verified", "discovered", "in_memory",
			"in_memory_erased", "in_memory_end_user_unknown"})
		row := func(scope string, v VerificationRow) {
			_ = cw.Write([]string{scope, v.CharacterID, itoa(v.Deleted), itoa(v.Verified), itoa(v.Present), optTime(v.LastVerified), itoa(v.Discovered),
				itoa(v.InMemory), itoa(v.InMemoryErased), itoa(v.InMemoryEndUserUnknown)})
		}
		for _, v := range r.Verification {
			row("character", v)
		}
		row("total", r.VerificationTotal)
	case CSVUnmatchedHolds:
		_ = cw.Write([]string{"hold_id", "character_id", "session_id", "reason", "created_by", "created_at"})
		for _, h := range r.UnmatchedHolds {
			_ = cw.Write([]string{itoa(h.ID), h.CharacterID, optString(h.SessionID), h.Reason, h.CreatedBy, rfc3339(h.CreatedAt)})
		}
	case CSVSummary:
		_ = cw.Write([]string{"figure", "value"})
		for _, f := range r.summary() {
			_ = cw.Write(f[:])
		}
	default:
		_ = cw.Write([]string{"scope", "character_id", "policy", "policy_id", "max_age", "held_by", "deleted", "failed_not_deleted",
			"outstanding", "held", "overdue", "lag_p50_seconds", "lag_p95_seconds", "lag_max_seconds",
			"since", "until", "generated_at", "sla_seconds", "deleted_late"})
		row := func(scope string, c CharacterRow) {
			p := c.Policy
			if p == nil {
				p = &PolicyInForce{}
			}
			_ = cw.Write([]string{scope, c.CharacterID, p.Decision, optInt(p.PolicyID), p.MaxAge, optInt(p.HeldBy),
				itoa(c.Deleted), itoa(c.Failed), itoa(c.Outstanding), itoa(c.Held), itoa(c.Overdue),
				seconds(c.LagP50), seconds(c.LagP95), seconds(c.LagMax),
				rfc3339(r.Since), rfc3339(r.Until), rfc3339(r.GeneratedAt), strconv.FormatFloat(r.SLASeconds, 'f', -1, 64),
				itoa(c.DeletedLate)})
		}
		for _, c := range r.Characters {
			row("character", c)
		}
		row("total", r.Total)
	}
	cw.Flush()
	return cw.Error()
}

// summary is the report's headline figures as (figure, value) pairs, named as in the JSON
// where the JSON has the figure, then one "check" pair per command.
func (r *Report) summary() [][2]string {
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	t, v, e := r.Total, r.VerificationTotal, r.ErasureTotals
	out := [][2]string{
		{"since", rfc3339(r.Since)}, {"until", rfc3339(r.Until)}, {"generated_at", rfc3339(r.GeneratedAt)},
		{"character", r.Character}, {"source", r.Source}, {"sla_seconds", strconv.FormatFloat(r.SLASeconds, 'f', -1, 64)},
		{"deleted", itoa(t.Deleted)}, {"deleted_late", itoa(t.DeletedLate)}, {"failed_not_deleted", itoa(t.Failed)},
		{"outstanding", itoa(t.Outstanding)}, {"held", itoa(t.Held)}, {"overdue", itoa(t.Overdue)},
		{"lag_p50_seconds", seconds(t.LagP50)}, {"lag_p95_seconds", seconds(t.LagP95)}, {"lag_max_seconds", seconds(t.LagMax)},
		{"runs", strconv.Itoa(len(r.Runs))},
		{"log_size", itoa(r.Chain.LogSize)}, {"log_root", r.Chain.LogRoot}, {"v1_chain_seq", itoa(r.Chain.Seq)}, {"v1_chain_hash", r.Chain.Hash},
		{"verification_deleted", itoa(v.Deleted)}, {"verified", itoa(v.Verified)}, {"found_present", itoa(v.Present)},
		{"last_verified", optTime(v.LastVerified)}, {"discovered", itoa(v.Discovered)}, {"in_memory", itoa(v.InMemory)},
		{"in_memory_erased", itoa(v.InMemoryErased)}, {"in_memory_end_user_unknown", itoa(v.InMemoryEndUserUnknown)},
		{"erasure_open", strconv.Itoa(e.Open)}, {"erasure_overdue", strconv.Itoa(e.Overdue)}, {"erasure_blocked", strconv.Itoa(e.Blocked)},
		{"erasure_completed", strconv.Itoa(e.Completed)}, {"erasure_lag_max_seconds", seconds(e.LagMax)},
		{"unmatched_holds", strconv.Itoa(len(r.UnmatchedHolds))},
	}
	if y := r.Sync; y != nil {
		out = append(out, [][2]string{{"sync_source", y.Source}, {"last_sync_at", optTime(y.LastSyncAt)},
			{"last_full_pass_at", optTime(y.LastFullAt)}, {"syncs", itoa(y.Syncs)}, {"sync_rows_read", itoa(y.RowsRead)},
			{"sync_added", itoa(y.Added)}, {"sync_changed", itoa(y.Changed)}, {"sync_unchanged", itoa(y.Unchanged)},
			{"forgotten_in_set", itoa(y.Forgotten)}}...)
	}
	for _, c := range r.Checks {
		out = append(out, [2]string{"check", c.Command})
	}
	return out
}

func (e *Evidence) writeCSV(w io.Writer) error {
	cw := newCSV(w)
	_ = cw.Write([]string{"session_id", "character_id", "state", "reason_code", "deletion_id", "run_id", "run_status", "status",
		"attempts", "http_status", "error", "policy_id", "policy_character_id", "max_age", "last_active_at", "expired_at",
		"requested_at", "completed_at", "lag_seconds", "seal_seq", "seal_hash", "memory", "memory_end_user_id", "memory_erased_at", "reason"})
	for _, f := range e.Findings {
		var memory, endUser, erased string
		if m := f.Memory; m != nil {
			memory, endUser, erased = m.Said, m.EndUserID, optTime(m.MemoryErasedAt)
		}
		if len(f.Attempts) == 0 {
			_ = cw.Write([]string{e.SessionID, f.CharacterID, f.State, f.ReasonCode, "", "", "", "", "", "", "", "", "", "", "", "",
				"", "", "", "", "", memory, endUser, erased, f.Reason})
			continue
		}
		for _, a := range f.Attempts {
			_ = cw.Write([]string{e.SessionID, f.CharacterID, f.State, f.ReasonCode, strconv.FormatInt(a.DeletionID, 10),
				strconv.FormatInt(a.RunID, 10), a.RunStatus, a.Status, strconv.FormatInt(int64(a.Attempts), 10),
				optInt(a.HTTPStatus), optString(a.Error), optInt(a.PolicyID), optString(a.PolicyCharacterID), a.MaxAge,
				optZeroTime(a.LastActiveAt), optZeroTime(a.ExpiredAt), rfc3339(a.RequestedAt), optTime(a.CompletedAt),
				seconds(a.LagSeconds), optInt(a.SealSeq), optString(a.SealHash), memory, endUser, erased, f.Reason})
		}
	}
	cw.Flush()
	return cw.Error()
}
