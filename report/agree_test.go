package report_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/report/reporttest"
)

// renderAll renders r in the four formats (every table of a CSV) and reads back what each
// states.
func renderAll(t *testing.T, r *report.Report) map[report.Format]reporttest.Figures {
	t.Helper()
	out := map[report.Format]reporttest.Figures{}
	var err error
	out[report.FormatTable], err = reporttest.FromText(render(t, r, report.FormatTable, ""))
	require.NoError(t, err)
	out[report.FormatHTML], err = reporttest.FromHTML(render(t, r, report.FormatHTML, ""))
	require.NoError(t, err)
	out[report.FormatJSON], err = reporttest.FromJSON([]byte(render(t, r, report.FormatJSON, "")))
	require.NoError(t, err)
	tables := map[report.CSVTable]string{}
	for _, tbl := range report.CSVTables {
		tables[tbl] = render(t, r, report.FormatCSV, tbl)
	}
	out[report.FormatCSV], err = reporttest.FromCSV(tables)
	require.NoError(t, err)
	return out
}

// holdsThatMatchNothing adds hold 3 on "alpha " (a trailing space), hold 4 on beta/b-gone (not in
// the source), hold 5 on beta/b-new (in the source) and hold 6 on beta/b-none, released.
func holdsThatMatchNothing(t *testing.T, b *bundle) {
	t.Helper()
	b.exec(t, `
		INSERT INTO retention.holds (id, character_id, session_id, reason, created_by, created_at, released_at, released_by, release_reason)
		OVERRIDING SYSTEM VALUE VALUES
		    (3, 'alpha ', NULL, 'litigation 43', 'legal', '2025-02-01 09:00+00', NULL, NULL, NULL),
		    (4, 'beta', 'b-gone', 'ticket 9', 'support', '2025-02-02 09:00+00', NULL, NULL, NULL),
		    (5, 'beta', 'b-new', 'ticket 10', 'support', '2025-02-03 09:00+00', NULL, NULL, NULL),
		    (6, 'beta', 'b-none', 'ticket 11', 'support', '2025-02-04 09:00+00', '2025-02-05 09:00+00', 'support', 'done')`)
}

// Every format renders the one model: the table, the HTML, the JSON and the CSV tables state the
// same log, chain, counts, overdue, late, verification, erasure requests, holds and checks.
func TestReportFormatsAgree(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedErasures(t, b)
	holdsThatMatchNothing(t, b)
	r := build(t, b, report.Options{})

	all := renderAll(t, r)
	want := all[report.FormatJSON]
	for _, f := range []report.Format{report.FormatTable, report.FormatHTML, report.FormatCSV} {
		require.Equal(t, want, all[f], "%s states other figures than json", f)
	}

	// And what they agree on is right: worked out by hand in setup_test.go and report_test.go.
	require.EqualValues(t, 13, want.ChainSeq)
	require.Equal(t, r.Chain.Hash, want.ChainHash)
	require.Equal(t, []string{"retention audit verify --checkpoint 13:" + r.Chain.Hash}, want.Checks)
	require.Equal(t, [3]int64{3, 1, 8}, [3]int64{want.Overdue, want.Late, want.Deleted})
	require.Equal(t, map[string][6]int64{
		"alpha": {5, 0, 1, 3, 1, 2}, "beta": {3, 1, 1, 2, 0, 1}, "gamma": {0, 0, 0, 0, 2, 0}, "off": {0, 0, 0, 0, 0, 0},
		reporttest.Total: {8, 1, 2, 5, 3, 3},
	}, want.Characters)
	require.Equal(t, [5]int64{1, 1, 0, 2, 2}, want.Days["2025-03-07"])
	require.Equal(t, 3, want.Runs)
	require.Equal(t, [4]int64{2, 1, 1, 0}, want.ErasureTotals, "open: 1 and 2 (overdue); blocked: 3")
	require.Equal(t, map[int64]string{1: "open", 2: "overdue", 3: "blocked"}, want.Erasures)
	require.Equal(t, 2, want.HoldsStated)
	require.Equal(t, []int64{3, 4}, want.UnmatchedHolds)
	require.Equal(t, [7]int64{10, 0, 0, 0, 0, 0, 0}, want.Verification[reporttest.Total], "8 v1 deletions, b-x1 and b-x2; never verified")
}

func TestReportUnmatchedHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	holdsThatMatchNothing(t, b)

	r := build(t, b, report.Options{})
	require.Len(t, r.UnmatchedHolds, 2)
	sess := "b-gone"
	require.Equal(t, []report.HoldRow{
		{ID: 3, CharacterID: "alpha ", Reason: "litigation 43", CreatedBy: "legal", CreatedAt: r.UnmatchedHolds[0].CreatedAt},
		{ID: 4, CharacterID: "beta", SessionID: &sess, Reason: "ticket 9", CreatedBy: "support", CreatedAt: r.UnmatchedHolds[1].CreatedAt},
	}, r.UnmatchedHolds)
	require.Equal(t, "2025-02-01T09:00:00Z", r.UnmatchedHolds[0].CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
	require.Equal(t, []string{"alpha ", "beta/b-gone"}, []string{r.UnmatchedHolds[0].Name(), r.UnmatchedHolds[1].Name()})

	text := render(t, r, report.FormatTable, "")
	require.Contains(t, text, "\nHOLDS      2 active hold(s) match no session of the source and protect nothing now (a typo? spaces and case count): "+
		`hold 3 ("alpha "), hold 4 ("beta/b-gone")`+"\n")
	require.Regexp(t, `(?m)^4\s+beta\s+b-gone\s+support\s+2025-02-02 09:00:00\s+ticket 9$`, text)
	page := render(t, r, report.FormatHTML, "")
	require.Contains(t, page, `<dd id="unmatched_holds" class="alarm">2 active hold(s)`)
	require.Contains(t, page, `<tr data-hold="3"><td class="n">3</td><td data-field="character">&#34;alpha &#34;</td><td data-field="session">every session</td>`)

	// One character: its holds only. Released holds never count.
	r = build(t, b, report.Options{Character: "beta"})
	require.Len(t, r.UnmatchedHolds, 1)
	require.EqualValues(t, 4, r.UnmatchedHolds[0].ID)
	b.exec(t, `UPDATE retention.holds SET released_at = now(), released_by = 'legal', release_reason = 'typo' WHERE id IN (3, 4)`)
	r = build(t, b, report.Options{})
	require.Empty(t, r.UnmatchedHolds)
	require.Contains(t, render(t, r, report.FormatTable, ""), "\nholds      every active hold matches a session of the source\n")
	require.NotContains(t, render(t, r, report.FormatHTML, ""), `id="unmatched-holds"`)
}

// A CSV table each: the summary names each figure once, and the checks.
func TestReportCSVSummary(t *testing.T) {
	t.Parallel()
	r := build(t, setup(t), report.Options{})
	rows := readCSV(t, render(t, r, report.FormatCSV, report.CSVSummary))
	got := map[string]string{}
	for _, row := range rows {
		_, dup := got[row["figure"]]
		require.False(t, dup, "figure %s twice", row["figure"])
		got[row["figure"]] = row["value"]
	}
	for k, v := range map[string]string{"deleted": "8", "deleted_late": "1", "overdue": "3", "outstanding": "5", "held": "3",
		"failed_not_deleted": "2", "runs": "3", "log_size": "0", "v1_chain_seq": "13", "v1_chain_hash": r.Chain.Hash,
		"unmatched_holds": "0", "sla_seconds": "604800", "lag_p95_seconds": "693000",
		"check": "retention audit verify --checkpoint 13:" + r.Chain.Hash} {
		require.Equal(t, v, got[k], k)
	}
	var buf bytes.Buffer
	_, err := report.ParseCSVTable("holds")
	require.EqualError(t, err, `invalid --table "holds": want characters, runs, days, erasures, verification, unmatched-holds or summary`)
	require.NoError(t, r.Write(&buf, report.FormatCSV, report.CSVVerification))
	require.Equal(t, "scope,character_id,deleted,verified,found_present,last_verified,discovered,in_memory,in_memory_erased,in_memory_end_user_unknown\n"+
		"character,alpha,5,0,0,,0,0,0,0\ncharacter,beta,3,0,0,,0,0,0,0\ntotal,,8,0,0,,0,0,0,0\n", buf.String())
}
