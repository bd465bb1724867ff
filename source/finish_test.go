package source_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// TestFinishCountsTheRows: a run's final row counts its outcomes, whatever the caller says it
// deleted (a stolen credential finishing with deleted = 1000000 showed that figure in reports).
func TestFinishCountsTheRows(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 3)
	ctx := context.Background()
	r, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer r.Close(ctx)
	c, err := r.Claim(ctx, chunk(t, pool, "s1", "s2"))
	require.NoError(t, err)
	require.NoError(t, r.Record(ctx, c, []job.Outcome{{SessionID: "s1", Deleted: true, Attempts: 1, HTTPStatus: 200},
		{SessionID: "s2", Attempts: 3, HTTPStatus: 500, Error: "no confirmation"}}))
	_, err = r.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded, Selected: 2, Deleted: 1_000_000, Failed: 0})
	require.NoError(t, err)
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.runs WHERE deleted = 1 AND failed = 1`))
}

// TestFinishRefusesAJunkNote: the checkpoint note is sealed, so it must be a signed note of the
// checkpoint itself; anything else is refused before it is written.
func TestFinishRefusesAJunkNote(t *testing.T) {
	t.Parallel()
	for name, note := range map[string]string{
		"junk":           "hello",
		"another tree":   "go.sum database tree\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 key abcd\n",
		"no signature":   "go.sum database tree\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
		"a control byte": "go.sum database tree\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u2014 key ab\x07cd\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, pool := store(t, 0)
			ctx := context.Background()
			s := storeWith(t, pool, source.Config{WriteRetry: time.Second,
				Sign: func(context.Context, int64, int64, []byte) (string, error) { return note, nil }})
			r, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
			require.NoError(t, err)
			defer r.Close(ctx)
			_, err = r.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded})
			require.ErrorContains(t, err, "the note is not a signed note of the log at size 0")
			require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.checkpoints`))
			require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))
		})
	}
	t.Run("a well-formed note is taken", func(t *testing.T) {
		t.Parallel()
		_, pool := store(t, 0)
		ctx := context.Background()
		s := storeWith(t, pool, source.Config{WriteRetry: time.Second,
			Sign: func(context.Context, int64, int64, []byte) (string, error) {
				return "go.sum database tree\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u2014 retention+1a2b3c4d AbCd+/==\n", nil
			}})
		r, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
		require.NoError(t, err)
		defer r.Close(ctx)
		_, err = r.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded})
		require.NoError(t, err)
	})
}

// TestSealWaitIsBounded: a session holding retention.seal() open in a transaction makes a run's
// finish fail within the seal's 15 s lock wait, with an error that names the cause, and the run's
// row stays running for the next run to repair (rather than a 2-minute stall).
func TestSealWaitIsBounded(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 1)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT * FROM retention.seal()`)
	require.NoError(t, err)

	r, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer r.Close(ctx)
	_, err = r.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded})
	require.ErrorIs(t, err, source.ErrLogLocked)
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))
}

// storeWith is a Store on pool's built-in source with cfg.
func storeWith(t *testing.T, pool *pgxpool.Pool, cfg source.Config) *source.Store {
	t.Helper()
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(t, err)
	src, err := source.Inspect(context.Background(), pool, rel)
	require.NoError(t, err)
	return source.New(pool, src, cfg)
}
