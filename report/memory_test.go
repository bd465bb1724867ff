package report_test

import (
	"bytes"
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

// The report says per character how many deleted sessions in memory had their end user's
// memory erased since, and how many have no known end user, in every format alike; a session's
// evidence says the same of that session.
func TestReportSaysWhetherMemoryWasErased(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var verifyID int64
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT verify_id FROM retention.start_verify('{}', 'test', 'test')`).Scan(&verifyID))
	b.exec(t, `INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, listed_at, end_user_id)
		VALUES ('alpha', 'a-d1', $1, now(), 'u1'), ('alpha', 'a-d2', $1, now(), NULL), ('beta', 'b-d1', $1, now(), 'u2')`, verifyID)
	b.exec(t, `INSERT INTO retention.memory_listings (character_id, session_id, said, verify_id, listed_at)
		VALUES ('alpha', 'a-d1', 'not_added', $1, now() - interval '1 minute')`, verifyID)
	var request int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `INSERT INTO retention.end_user_requests (end_user_id, character_id, reason)
		VALUES ('u1', 'alpha', 'ticket') RETURNING id`).Scan(&request))
	b.exec(t, `INSERT INTO retention.memory_erasures (request_id, run_id, character_id, status, attempts, remaining, started_at)
		VALUES ($1, 11, 'alpha', 'erased', 1, 0, now())`, request)

	r := build(t, b, report.Options{})
	got := map[string][3]int64{}
	for _, v := range r.Verification {
		got[v.CharacterID] = [3]int64{v.InMemory, v.InMemoryErased, v.InMemoryEndUserUnknown}
	}
	require.Equal(t, map[string][3]int64{"alpha": {2, 1, 1}, "beta": {1, 0, 0}}, got)
	all := renderAll(t, r)
	want := all[report.FormatJSON]
	for _, f := range []report.Format{report.FormatTable, report.FormatHTML, report.FormatCSV} {
		require.Equal(t, want, all[f], "%s states other figures than json", f)
	}
	total := want.Verification[reporttest.Total]
	require.Equal(t, []int64{3, 1, 1}, total[4:], "in memory, erased since, end user unknown")
	require.Contains(t, render(t, r, report.FormatTable, ""),
		"3 deleted sessions had gone into long-term memory, as Convai's list said (1 with their end user's memory erased since, 1 whose end user is not known)")

	for session, want := range map[string]string{
		"a-d1": "Convai listed it as added to long-term memory (verify's list, ",
		"a-d2": "its end user is not known, so their memory cannot be erased by end user: the memory may remain",
		"b-d1": "end user u2's memory of the character has not been erased since the deletion: the memory may remain",
	} {
		ev, err := report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: session})
		require.NoError(t, err)
		require.Len(t, ev.Findings, 1)
		m := ev.Findings[0].Memory
		require.NotNil(t, m, session)
		require.Equal(t, report.MemoryAdded, m.Said, session)
		var text, html bytes.Buffer
		require.NoError(t, ev.Write(&text, report.FormatTable))
		require.NoError(t, ev.Write(&html, report.FormatHTML))
		require.Contains(t, text.String(), want, session)
		require.Contains(t, html.String(), `data-said="added"`, session)
	}
	ev, err := report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "a-d1"})
	require.NoError(t, err)
	m := ev.Findings[0].Memory
	require.Equal(t, "u1", m.EndUserID)
	require.NotNil(t, m.MemoryErasedAt)
	require.NotNil(t, m.NotAddedListedAt, "a false before the true is kept")
	var text, csv bytes.Buffer
	require.NoError(t, ev.Write(&text, report.FormatTable))
	require.Contains(t, text.String(), "end user u1's memory of the character was erased after the deletion")
	require.NoError(t, ev.Write(&csv, report.FormatCSV))
	require.Contains(t, csv.String(), ",added,u1,")

	// A verification found the memory again: the refuted erasure is no erasure, for the report
	// and for the session's evidence alike.
	b.exec(t, `INSERT INTO retention.memory_rechecks (verify_id, memory_erasure_id, result, listed, total_count, attempts, listed_at)
		SELECT $1, id, 'found', 1, 1, 1, now() FROM retention.memory_erasures WHERE request_id = $2`, verifyID, request)
	r = build(t, b, report.Options{Character: "alpha"})
	require.Zero(t, r.VerificationTotal.InMemoryErased)
	ev, err = report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "a-d1"})
	require.NoError(t, err)
	require.Nil(t, ev.Findings[0].Memory.MemoryErasedAt, "the evidence cites no refuted erasure")

	ev, err = report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "b-d2"})
	require.NoError(t, err)
	for _, f := range ev.Findings {
		require.Nil(t, f.Memory, "no list recorded anything of it")
	}
}
