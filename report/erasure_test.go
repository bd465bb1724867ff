package report_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
)

// seedErasures adds erasure requests in every state to the seeded world, relative to now:
// 1 open (alpha/x-open), 2 overdue (asked 40 days ago), 3 blocked by hold 2 (gamma is held),
// 4 completed an hour ago by run 20 after 2 hours (every session of beta), 5 completed in 2024,
// before any period a test asks for.
func seedErasures(t *testing.T, b *bundle) {
	t.Helper()
	b.exec(t, `
		INSERT INTO retention.erasure_requests (character_id, session_id, reason, requested_by, requested_at) VALUES
		    ('alpha', 'x-open', 'ticket 1', 'dpo', now() - interval '1 day'),
		    ('alpha', 'x-late', 'ticket 2', 'dpo', now() - interval '40 days'),
		    ('gamma', 'g-1', 'ticket 3', 'dpo', now() - interval '2 days'),
		    ('beta', NULL, 'ticket 4: every session', 'dpo', now() - interval '3 hours'),
		    ('alpha', 'x-old', 'ticket 5', 'dpo', '2024-01-01');
		INSERT INTO retention.runs (id, cutoff, source, status, started_at, finished_at) OVERRIDING SYSTEM VALUE
		VALUES (20, now() - interval '1 hour', 'retention.sessions', 'succeeded', now() - interval '1 hour', now() - interval '1 hour');
		INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at, erasure_request_id)
		VALUES (20, 'beta', NULL, ARRAY['b-x1', 'b-x2'], ARRAY[now() - interval '1 day', NULL], 4);
		INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status)
		SELECT id, o, 'beta', session_ids[o], 'deleted', 1, 200 FROM retention.claims, generate_series(1, 2) o
		WHERE erasure_request_id = 4;
		INSERT INTO retention.erasure_completions (request_id, run_id, sessions, completed_at) VALUES
		    (4, 20, 2, now() - interval '1 hour'), (5, 20, 1, '2024-01-02');`)
}

func TestReportErasureRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedErasures(t, b)
	now := time.Now()
	r := build(t, b, report.Options{Since: now.Add(-24 * time.Hour), Until: now.Add(time.Hour)})

	require.Equal(t, report.ErasureTotals{Open: 2, Overdue: 1, Blocked: 1, Completed: 1, LagMax: r.ErasureTotals.LagMax}, r.ErasureTotals)
	require.NotNil(t, r.ErasureTotals.LagMax)
	require.InDelta(t, 2*3600, *r.ErasureTotals.LagMax, 5)
	var ids []int64
	state := map[int64]report.ErasureRow{}
	for _, e := range r.Erasures {
		ids = append(ids, e.ID)
		state[e.ID] = e
	}
	require.ElementsMatch(t, []int64{1, 2, 3, 4}, ids, "open ones whenever filed; completed ones of the period only")
	require.Equal(t, "open", state[1].State)
	require.False(t, state[1].Overdue)
	require.Equal(t, "overdue", state[2].State)
	require.True(t, state[2].Overdue)
	require.Equal(t, "blocked", state[3].State)
	require.Equal(t, []int64{2}, state[3].BlockedBy)
	require.Equal(t, "completed", state[4].State)
	require.EqualValues(t, 2, state[4].SessionsDeleted)
	require.Nil(t, state[4].SessionID)
	require.EqualValues(t, 20, *state[4].CompletedByRun)

	text := render(t, r, report.FormatTable, "")
	require.Contains(t, text, "Erasure requests: 2 open (1 overdue), 1 blocked by a hold, 1 completed in the period (longest lag 2h 0m)")
	require.Regexp(t, `(?m)^4\s+beta\s+every session\s+completed\s.*\s2\s.*2h 0m\s+ticket 4: every session$`, text)
	require.Regexp(t, `(?m)^3\s+gamma\s+g-1\s+blocked\s.*hold 2\s+ticket 3$`, text)

	rows := readCSV(t, render(t, r, report.FormatCSV, report.CSVErasures))
	require.Len(t, rows, 4)
	for _, row := range rows {
		switch row["request_id"] {
		case "2":
			require.Equal(t, "true", row["overdue"])
		case "3":
			require.Equal(t, "2", row["blocked_by_holds"])
		case "4":
			require.Equal(t, "", row["session_id"])
			require.Equal(t, "20", row["completed_by_run"])
		}
	}

	// The evidence of a session names the request and the deletion made under it.
	ev, err := report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "b-x2", Character: "beta"})
	require.NoError(t, err)
	f := ev.Findings[0]
	require.Equal(t, report.StateDeleted, f.State)
	require.Contains(t, f.Reason, "under erasure request 4")
	require.Len(t, f.Erasures, 1)
	require.EqualValues(t, 4, f.Erasures[0].ID)
	require.True(t, f.Deletion.LastActiveAt.IsZero(), "the source never had it")
	require.True(t, f.Deletion.ExpiredAt.IsZero(), "no policy: no expiry")
	require.NotContains(t, render(t, r, report.FormatJSON, ""), `"0001-01-01`)
	var buf bytes.Buffer
	require.NoError(t, ev.Write(&buf, report.FormatJSON))
	require.NotContains(t, buf.String(), `"0001-01-01`, "an unknown time is left out, not a zero date")
	require.Contains(t, buf.String(), `"erasure_request_id": 4`)
}

func TestReportErasureHTMLInChromium(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedErasures(t, b)
	now := time.Now()
	r := build(t, b, report.Options{Since: now.Add(-24 * time.Hour), Until: now.Add(time.Hour)})
	page := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	require.NoError(t, r.Write(&buf, report.FormatHTML, ""))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o600))
	dom := string(headless(t, page, "--dump-dom"))
	require.Contains(t, dom, "2 open (1 overdue), 1 blocked by a hold, 1 completed in the period (longest lag 2h 0m).")
	require.Equal(t, "blocked", cells(t, dom, "data-erasure", "3")["state"])
	require.Equal(t, "hold 2", cells(t, dom, "data-erasure", "3")["blocked_by"])
	require.Equal(t, "overdue", cells(t, dom, "data-erasure", "2")["state"])
	require.Equal(t, "2h 0m", cells(t, dom, "data-erasure", "4")["lag"])
	require.Equal(t, "2", cells(t, dom, "data-erasure", "4")["deleted"])
	require.False(t, strings.Contains(dom, `data-erasure="5"`), "completed before the period")

	ev, err := report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "b-x2", Character: "beta"})
	require.NoError(t, err)
	page = filepath.Join(t.TempDir(), "session.html")
	buf.Reset()
	require.NoError(t, ev.Write(&buf, report.FormatHTML))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o600))
	dom = string(headless(t, page, "--dump-dom"))
	require.Contains(t, dom, "erasure request 4")
	require.Contains(t, dom, `data-erasure="4"`)
	require.NotContains(t, dom, "0001-01-01")
}
