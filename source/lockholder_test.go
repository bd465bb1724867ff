package source_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// TestLockHolders: a role that took the run lock by hand (as anyone who can connect can) and
// a run's own lock are both named, with who and since when; a lock of another class is not.
func TestLockHolders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	none, err := source.LockHolders(ctx, db.Pool)
	require.NoError(t, err)
	require.Empty(t, none)

	// Someone takes shard 0 of 1's lock by hand, from a session named "psql-by-hand".
	cfg, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.RuntimeParams["application_name"] = "psql-by-hand"
	squatter, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { squatter.Close(context.Background()) })
	var pid int32
	require.NoError(t, squatter.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	_, err = squatter.Exec(ctx, "SELECT pg_advisory_lock(1380275269, 65536), pg_advisory_lock(42, 7)")
	require.NoError(t, err)

	// A run cannot start, and the holder is there to name.
	store := source.New(db.Pool, &source.Source{}, source.Config{})
	_, _, err = store.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}})
	require.ErrorIs(t, err, job.ErrLocked)

	holders, err := source.LockHolders(ctx, db.Pool)
	require.NoError(t, err)
	require.Len(t, holders, 1, "%v", holders)
	h := holders[0]
	require.Equal(t, pid, h.PID)
	require.Equal(t, "psql-by-hand", h.Application)
	require.NotEmpty(t, h.User)
	require.NotEmpty(t, h.Client)
	require.WithinDuration(t, time.Now(), h.Since, time.Minute)
	require.Equal(t, 0, h.ShardIndex)
	require.Equal(t, 1, h.ShardCount)
	s := h.String()
	require.Contains(t, s, "psql-by-hand")
	require.Contains(t, s, h.User)
	require.Contains(t, s, "connected since")
	require.Contains(t, s, "shard 0 of 1")
}
