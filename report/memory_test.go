package report_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/report/reporttest"
)

// The verification section counts per character the deleted sessions a verification's list
// showed as added to long-term memory, in every format alike; a session seen so but not
// deleted is not counted.
func TestReportCountsDeletedSessionsInMemory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var verifyID int64
	var token string
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT verify_id, token FROM retention.start_verify('{}', 'test', 'test')`).Scan(&verifyID, &token))
	for char, ids := range map[string][]string{"alpha": {"a-d1", "a-d2", "a-p1"}, "beta": {"b-d1"}, "gamma": {"g-live"}} {
		b.exec(t, `SELECT retention.record_memory_sightings($1, $2, $3, now(), $4)`, verifyID, token, char, ids)
	}
	r := build(t, b, report.Options{})
	in := map[string]int64{}
	for _, v := range r.Verification {
		in[v.CharacterID] = v.InMemory
	}
	require.Equal(t, map[string]int64{"alpha": 2, "beta": 1}, in, "a-p1 is pending, g-live never deleted")
	require.EqualValues(t, 3, r.VerificationTotal.InMemory)

	all := renderAll(t, r)
	want := all[report.FormatJSON]
	for _, f := range []report.Format{report.FormatTable, report.FormatHTML, report.FormatCSV} {
		require.Equal(t, want, all[f], "%s states other figures than json", f)
	}
	require.EqualValues(t, 3, want.Verification[reporttest.Total][4])
	require.EqualValues(t, 2, want.Verification["alpha"][4])
	require.Contains(t, render(t, r, report.FormatTable, ""), "; 3 deleted sessions had gone into long-term memory")

	r = build(t, b, report.Options{Character: "beta"})
	require.EqualValues(t, 1, r.VerificationTotal.InMemory)
}
