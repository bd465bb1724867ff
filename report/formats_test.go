package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
)

func render(t *testing.T, r *report.Report, f report.Format, table report.CSVTable) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, r.Write(&buf, f, table))
	return buf.String()
}

func readCSV(t *testing.T, text string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs, "a header at least")
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

func TestReportCSV(t *testing.T) {
	t.Parallel()
	r := build(t, setup(t), report.Options{})

	rows := readCSV(t, render(t, r, report.FormatCSV, ""))
	require.Len(t, rows, 5)
	pick := func(m map[string]string, keys ...string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, m[k])
		}
		return out
	}
	keys := []string{"scope", "character_id", "policy", "policy_id", "max_age", "held_by", "deleted", "failed_not_deleted",
		"outstanding", "held", "overdue", "lag_p50_seconds", "lag_p95_seconds", "lag_max_seconds", "since", "until", "sla_seconds"}
	period := []string{"2025-03-01T00:00:00Z", "2025-03-08T00:00:00Z", "604800"}
	require.Equal(t, append([]string{"character", "alpha", "default_policy", "1", "30 days", "", "5", "1", "3", "1", "2", "10800", "338400", "338400"}, period...), pick(rows[0], keys...))
	require.Equal(t, append([]string{"character", "beta", "own_policy", "2", "7 days", "", "3", "1", "2", "0", "1", "5400", "693000", "693000"}, period...), pick(rows[1], keys...))
	require.Equal(t, append([]string{"character", "gamma", "default_policy", "1", "30 days", "2", "0", "0", "0", "2", "0", "", "", ""}, period...), pick(rows[2], keys...))
	require.Equal(t, append([]string{"character", "off", "disabled", "3", "", "", "0", "0", "0", "0", "0", "", "", ""}, period...), pick(rows[3], keys...))
	require.Equal(t, append([]string{"total", "", "", "", "", "", "8", "2", "5", "3", "3", "7200", "693000", "693000"}, period...), pick(rows[4], keys...))

	runs := readCSV(t, render(t, r, report.FormatCSV, report.CSVRuns))
	require.Len(t, runs, 3)
	require.Equal(t, []string{"11", "partial", "2025-03-02T00:00:00Z", "2025-03-02T00:10:00Z", "600", "7", "4", "2", "1"},
		pick(runs[0], "run_id", "status", "started_at", "finished_at", "duration_seconds", "selected", "deleted", "failed", "skipped"))
	require.Equal(t, []string{"14", "running", "", ""}, pick(runs[2], "run_id", "status", "finished_at", "duration_seconds"))

	days := readCSV(t, render(t, r, report.FormatCSV, report.CSVDays))
	require.Len(t, days, 7)
	require.Equal(t, []string{"2025-03-06", "0", "0", "3", "3"}, pick(days[5], "day", "deleted", "failed", "backlog", "overdue"))
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	r := build(t, setup(t), report.Options{})
	var doc struct {
		Since      string `json:"since"`
		SLASeconds int    `json:"sla_seconds"`
		Characters []struct {
			CharacterID string `json:"character_id"`
			Policy      struct {
				Decision string `json:"decision"`
				PolicyID int64  `json:"policy_id"`
				MaxAge   string `json:"max_age"`
				HeldBy   *int64 `json:"held_by"`
			} `json:"policy"`
			Overdue int64    `json:"overdue"`
			LagP95  *float64 `json:"lag_p95_seconds"`
		} `json:"characters"`
		Total map[string]any    `json:"total"`
		Runs  []json.RawMessage `json:"runs"`
		Days  []report.DayRow   `json:"days"`
		Chain report.ChainHead  `json:"chain"`
	}
	out := render(t, r, report.FormatJSON, "")
	require.True(t, json.Valid([]byte(out)))
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Equal(t, "2025-03-01T00:00:00Z", doc.Since)
	require.Equal(t, 604800, doc.SLASeconds)
	require.Len(t, doc.Characters, 4)
	require.Equal(t, "beta", doc.Characters[1].CharacterID)
	require.Equal(t, "own_policy", doc.Characters[1].Policy.Decision)
	require.EqualValues(t, 2, doc.Characters[1].Policy.PolicyID)
	require.Equal(t, "7 days", doc.Characters[1].Policy.MaxAge)
	require.EqualValues(t, 693000, *doc.Characters[1].LagP95)
	require.EqualValues(t, 2, *doc.Characters[2].Policy.HeldBy)
	require.Nil(t, doc.Characters[2].LagP95, "no deletion, no lag: null")
	require.Equal(t, map[string]any{"deleted": 8.0, "deleted_late": 1.0, "failed_not_deleted": 2.0, "outstanding": 5.0, "held": 3.0, "overdue": 3.0,
		"lag_p50_seconds": 7200.0, "lag_p95_seconds": 693000.0, "lag_max_seconds": 693000.0}, doc.Total)
	require.Len(t, doc.Runs, 3)
	require.Equal(t, r.Days, doc.Days)
	require.EqualValues(t, 13, doc.Chain.Seq)
}

func TestReportTable(t *testing.T) {
	t.Parallel()
	r := build(t, setup(t), report.Options{})
	out := render(t, r, report.FormatTable, "")
	for _, re := range []string{
		`(?m)^period\s+2025-03-01T00:00:00Z to 2025-03-08T00:00:00Z`,
		`(?m)^source\s+retention\.sessions; SLA 7d`,
		`(?m)^log\s+0 leaves; root [0-9a-f]{64}`,
		`(?m)^v1 chain\s+13 seals; head 13:[0-9a-f]{64}`,
		`(?m)^OVERDUE\s+3 session\(s\) now: expired for longer than the SLA \(7d\) and still not deleted, not held$`,
		`(?m)^LATE\s+1 of the 8 deletion\(s\) in the period: confirmed more than the SLA \(7d\) after the session expired$`,
		`(?m)^holds\s+every active hold matches a session of the source$`,
		`(?m)^check\s+retention audit verify --checkpoint 13:[0-9a-f]{64}$`,
		`(?m)^CHARACTER\s+POLICY IN FORCE\s+DELETED\s+LATE\s+FAILED\s+OUTSTANDING\s+HELD\s+OVERDUE\s`,
		`(?m)^alpha\s+default policy 1: 30 days\s+5\s+0\s+1\s+3\s+1\s+2\s+3h 0m\s+3d 22h\s+3d 22h$`,
		`(?m)^beta\s+own policy 2: 7 days\s+3\s+1\s+1\s+2\s+0\s+1\s+1h 30m\s+8d 0h\s+8d 0h$`,
		`(?m)^gamma\s+default policy 1: 30 days; held by hold 2\s+0\s+0\s+0\s+0\s+2\s+0\s+-\s+-\s+-$`,
		`(?m)^off\s+own policy 3 disabled: never\s+0\s+0\s+0\s+0\s+0\s+0\s+-\s+-\s+-$`,
		`(?m)^\(total\)\s+8\s+1\s+2\s+5\s+3\s+3\s+2h 0m\s+8d 0h\s+8d 0h$`,
		`(?m)^11\s+partial\s+2025-03-02 00:00:00\s+10m 0s\s+0/1\s+7\s+4\s+2\s+1$`,
		`(?m)^14\s+running\s+2025-03-07 12:00:00\s+-\s+0/1`,
		`(?m)^DAY\s+DELETED\s+LATE\s+FAILED\s+BACKLOG AT END\s+OVERDUE AT END$`,
		`(?m)^2025-03-04\s+0\s+0\s+0\s+6\s+2$`,
		`(?m)^2025-03-07\s+1\s+1\s+0\s+2\s+2$`,
	} {
		require.Regexp(t, regexp.MustCompile(re), out)
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"table", "csv", "json", "html"} {
		f, err := report.ParseFormat(s)
		require.NoError(t, err)
		require.EqualValues(t, s, f)
	}
	_, err := report.ParseFormat("pdf")
	var fe *report.FormatError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, `invalid --format "pdf": want table, csv, json or html`, err.Error())
	_, err = report.ParseCSVTable("holds")
	require.ErrorAs(t, err, &fe)
}
