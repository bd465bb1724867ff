package job_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// signalAfterClaim is a store whose first claim is followed at once by the run being told to
// stop, as a SIGTERM arriving between a chunk's claim and its request does.
type signalAfterClaim struct {
	*source.Store
	stop func()
}

func (s *signalAfterClaim) StartRun(ctx context.Context, start job.RunStart) (job.RunStore, job.RunInfo, error) {
	rs, info, err := s.Store.StartRun(ctx, start)
	if err != nil {
		return nil, info, err
	}
	return &claimThenSignal{RunStore: rs, stop: s.stop}, info, nil
}

type claimThenSignal struct {
	job.RunStore
	once sync.Once
	stop func()
}

func (r *claimThenSignal) Claim(ctx context.Context, c job.Chunk) (job.Claim, error) {
	claim, err := r.RunStore.Claim(ctx, c)
	r.once.Do(r.stop)
	return claim, err
}

// TestSignalAfterClaimSendsTheChunk: a chunk claimed before the signal is drained like a request
// in flight: sent within the grace and recorded deleted, never recorded failed unsent. Nothing
// else is claimed after the signal. Before the fix the chunk was lost only when the interrupt's
// watcher goroutine cancelled the wait before the first try (a race it seldom won unless the
// machine was busy); the test pins the contract, which a check of the signal before the first
// request would break every time.
func TestSignalAfterClaimSendsTheChunk(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 30, days(2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := &signalAfterClaim{Store: b.store, stop: cancel}
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 10, 1
	r, err := job.New(store, b.send, cfg)
	require.NoError(t, err)
	sum, err := r.Run(ctx, job.RunStart{Source: "test", Host: "test"})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, job.StatusInterrupted, sum.Status)
	require.EqualValues(t, 10, sum.Deleted, "the claimed chunk went out")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'failed'`), "nothing recorded failed unsent")
	require.Equal(t, 10, b.count(t, `SELECT count(*) FROM retention.deletions`), "nothing claimed after the signal")
	require.Len(t, b.fakeDeleted(), 10)
}
