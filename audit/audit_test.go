package audit_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// The database and Go encode every kind of value the same way, whatever the session settings.
func TestContentMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (7, now(), 'test')`)
	b.exec(t, `
		INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, policy_id, policy_character_id, max_age, requested_at)
		VALUES
		  (7, 'c', 's-plain', '2024-05-01 12:00:00.123456+00', NULL, NULL, '30 days', '2024-06-01 00:00:00+00'),
		  (7, 'naïve 会話', E's,with:commas,1:x,-,', '1969-07-20 20:17:40.000001+00', 3, 'naïve 会話', '2 years 3 mons 4 days 05:06:07.5', now()),
		  (7, 'c', 's-neg', '-infinity', 4, NULL, '-1 mon 40 days -100:00:00.000001', now()),
		  (7, 'c', 's-pending', now(), NULL, NULL, '168 hours', now())`)
	b.exec(t, `UPDATE retention.deletions_v1 SET status = 'deleted', attempts = 1, http_status = 200, completed_at = clock_timestamp()
		WHERE session_id = 's-plain'`)
	b.exec(t, `UPDATE retention.deletions_v1 SET status = 'failed', attempts = 5, error = E'HTTP 400: "bad" ,:- \u00e9', completed_at = clock_timestamp()
		WHERE session_id IN (E's,with:commas,1:x,-,', 's-neg')`)

	ctx := context.Background()
	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET TimeZone = 'Pacific/Chatham'; SET IntervalStyle = 'iso_8601'; SET DateStyle = 'German'`)
	require.NoError(t, err)
	rows, err := conn.Query(ctx, `
		SELECT id, run_id, character_id, session_id, status, attempts, http_status, error, last_active_at,
		       policy_id, policy_character_id, max_age, requested_at, completed_at, retention.seal_content(d)
		FROM retention.deletions_v1 d ORDER BY id`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var r audit.Row
		var want []byte
		require.NoError(t, rows.Scan(&r.ID, &r.RunID, &r.CharacterID, &r.SessionID, &r.Status, &r.Attempts, &r.HTTPStatus,
			&r.Error, &r.LastActiveAt, &r.PolicyID, &r.PolicyCharacterID, &r.MaxAge, &r.RequestedAt, &r.CompletedAt, &want))
		require.Equal(t, string(want), string(audit.Content(r)), "deletion %d", r.ID)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 4, n)
	_, err = conn.Exec(ctx, `RESET ALL`)
	require.NoError(t, err)

	// A hand-written encoding of the first row, as docs/COMPLIANCE.md describes it.
	var id int64
	var completed time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id, completed_at FROM retention.deletions_v1 WHERE session_id = 's-plain'`).Scan(&id, &completed))
	idText := fmt.Sprint(id)
	micros := fmt.Sprint(completed.UnixMicro())
	want := "22:retention.deletions/v1," + fmt.Sprintf("%d:%s,", len(idText), idText) + "1:7,1:c,7:s-plain,7:deleted,1:1,3:200,-," +
		"16:1714564800123456,-,-,1:0,2:30,1:0,16:1717200000000000," + fmt.Sprintf("%d:%s,", len(micros), micros)
	var got []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT retention.seal_content(d) FROM retention.deletions_v1 d WHERE id = $1`, id).Scan(&got))
	require.Equal(t, want, string(got))

	// Three final rows, three seals; the pending one has none.
	res := verify(t, b.pool)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 3, res.Sealed)
	first := b.seal(t, id)
	sum := sha256.Sum256(append(make([]byte, 32), got...))
	require.Equal(t, sum[:], first.Hash, "the first seal is sha256(32 zero bytes || content)")
}

// Concurrent shards of real runs, with failures, seal every outcome once, in one chain.
func TestShardsRecordingAtOnceKeepOneChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAPI(t, convaitest.Options{FailRate: 0.2, Seed: 7})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	for _, c := range characters(12) {
		b.seedSessions(t, c, 40, 31)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.run(t, b.pool, job.Shard{Index: i, Count: 3})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 480, b.count(t, `SELECT count(DISTINCT session_id) FROM retention.deletions`))
	require.Positive(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'failed'`), "the fake failed some")
	claims := b.count(t, `SELECT count(*) FROM retention.claims`)

	res := verify(t, b.pool)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.Equal(t, claims, res.Log.Leaves, "every recorded claim is one leaf")
	require.Zero(t, res.Log.Queued)
	require.EqualValues(t, 3, res.Log.Checkpoints, "each run stored its checkpoint")
	require.EqualValues(t, claims, b.count(t, `SELECT size FROM retention.log_head`))
	require.Zero(t, res.Sealed, "no v1 seals")
}

func TestGuardsRejectChangesToFinalRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.outcomes(t, "c", 3, 3)
	ctx := context.Background()
	for _, tc := range []struct{ sql, want string }{
		{`UPDATE retention.deletions_v1 SET error = 'tidied' WHERE id = $1`, "is deleted and sealed"},
		{`UPDATE retention.deletions_v1 SET status = 'pending', completed_at = NULL WHERE id = $1`, "is deleted and sealed"},
		{`DELETE FROM retention.deletions_v1 WHERE id = $1`, "never deleted"},
		{`TRUNCATE retention.deletions_v1 CASCADE`, "never deleted"},
		{`UPDATE retention.seals SET hash = sha256(hash) WHERE deletion_id = $1`, "append-only"},
		{`DELETE FROM retention.seals WHERE deletion_id = $1`, "append-only"},
		{`INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, status, last_active_at, max_age, completed_at)
			SELECT run_id, 'c', 'forged', 'deleted', now(), '1 day', now() FROM retention.deletions_v1 WHERE id = $1`, "inserted pending"},
	} {
		var args []any
		if strings.Contains(tc.sql, "$1") {
			args = append(args, ids[0])
		}
		_, err := b.pool.Exec(ctx, tc.sql, args...)
		require.ErrorContains(t, err, tc.want, tc.sql)
	}
	// A pending row may only change its outcome.
	var run int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT run_id FROM retention.deletions_v1 WHERE id = $1`, ids[0]).Scan(&run))
	b.exec(t, `INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age) VALUES ($1, 'c', 'p', now(), '1 day')`, run)
	_, err := b.pool.Exec(ctx, `UPDATE retention.deletions_v1 SET session_id = 'other' WHERE session_id = 'p'`)
	require.ErrorContains(t, err, "only the outcome of a pending row may change")
	_, err = b.pool.Exec(ctx, `UPDATE retention.deletions_v1 SET max_age = '1 mon' WHERE session_id = 'p'`)
	require.ErrorContains(t, err, "only the outcome of a pending row may change")
	// A running run may change; once finished, it is history.
	b.exec(t, `UPDATE retention.runs SET error = 'still running' WHERE id = $1`, run)
	b.exec(t, `UPDATE retention.runs SET status = 'succeeded', finished_at = now() WHERE id = $1`, run)
	_, err = b.pool.Exec(ctx, `UPDATE retention.runs SET deleted = 0 WHERE id = $1`, run)
	require.ErrorContains(t, err, "finished: it can no longer change")
	_, err = b.pool.Exec(ctx, `DELETE FROM retention.runs WHERE id = $1`, run)
	require.ErrorContains(t, err, "never deleted")

	res := verify(t, b.pool)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 3, res.Sealed)
}

func TestParseCheckpoint(t *testing.T) {
	t.Parallel()
	hash := strings.Repeat("ab", 32)
	c, err := audit.ParseCheckpoint(" 42:" + hash + "\n")
	require.NoError(t, err)
	require.EqualValues(t, 42, c.Seq)
	require.Equal(t, "42:"+hash, c.String())
	for _, bad := range []string{"", "42", "x:" + hash, "0:" + hash, "42:abc", "42:" + strings.Repeat("zz", 32)} {
		_, err := audit.ParseCheckpoint(bad)
		var ce *audit.CheckpointError
		require.ErrorAs(t, err, &ce, bad)
	}
}

func ExampleHash() {
	r := audit.Row{ID: 1, RunID: 1, CharacterID: "c", SessionID: "s", Status: "deleted", Attempts: 1}
	r.LastActiveAt.Time, r.LastActiveAt.Valid = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), true
	r.MaxAge.Days, r.MaxAge.Valid = 30, true
	r.RequestedAt.Time, r.RequestedAt.Valid = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), true
	r.CompletedAt.Time, r.CompletedAt.Valid = time.Date(2024, 6, 1, 0, 0, 1, 0, time.UTC), true
	fmt.Printf("%s\n%x\n", audit.Content(r), audit.Hash(audit.Genesis, r))
	// Output:
	// 22:retention.deletions/v1,1:1,1:1,1:c,1:s,7:deleted,1:1,-,-,16:1714564800000000,-,-,1:0,2:30,1:0,16:1717200000000000,16:1717200001000000,
	// 78a1dc53a31891f0ae5867eb8a0adf7b57235167f2c3d534314c70d82574cd1f
}
