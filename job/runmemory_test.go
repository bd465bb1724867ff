package job_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// countingStore is the real store whose run handles note the size of each batch of memory
// flags they record (and record it, through the real store).
type countingStore struct {
	*source.Store
	mu      sync.Mutex
	batches []int
}

func (c *countingStore) StartRun(ctx context.Context, start job.RunStart) (job.RunStore, job.RunInfo, error) {
	rs, info, err := c.Store.StartRun(ctx, start)
	if err != nil {
		return rs, info, err
	}
	return &countingRun{RunStore: rs, c: c}, info, nil
}

type countingRun struct {
	job.RunStore
	c *countingStore
}

func (r *countingRun) RecordMemory(ctx context.Context, characterID string, listedAt time.Time, listed []job.MemoryListed) error {
	r.c.mu.Lock()
	r.c.batches = append(r.c.batches, len(listed))
	r.c.mu.Unlock()
	return r.RunStore.(job.MemoryRecorder).RecordMemory(ctx, characterID, listedAt, listed)
}

// TestRunRecordsWhatItsSettleListSaid: the list a run reads to settle a refused session records
// each listed session's is_added_to_memory under the run's ID, in batches of at most 10000, one
// list per character whatever the number of refusals.
func TestRunRecordsWhatItsSettleListSaid(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: []string{"c-s0001", "c-s0002"}}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 4, days(2))
	b.fake.SetAddedToMemory("c", "c-s0002", true)
	b.fake.AddSession("c", "c-unstated", time.Now())
	b.fake.SetListFlag("c", "c-unstated", convaitest.ListFlagAbsent)
	// The list shows 10,003 sessions the app never stored besides: the flags go in two batches.
	const extra = 10_003
	for i := range extra {
		b.fake.AddSession("c", fmt.Sprintf("c-x%05d", i), time.Now())
	}
	store := &countingStore{Store: b.store}
	cfg := fastConfig()
	cfg.ChunkSize = 4
	r, err := job.New(store, b.send, cfg)
	require.NoError(t, err)
	sum, err := r.Run(context.Background(), job.RunStart{Source: "test", Host: "test"})
	require.NoError(t, err)
	require.Equal(t, job.StatusPartial, sum.Status)
	require.EqualValues(t, 2, sum.Failed, "both refused sessions are still listed")
	require.Equal(t, 1, b.listRequests(), "one list for both refusals")

	require.Equal(t, []string{"c-s0002"}, b.strings(t,
		`SELECT session_id FROM retention.memory_sightings WHERE run_id = $1 AND verify_id IS NULL`, sum.RunID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_sightings m JOIN retention.runs r ON r.id = m.run_id
		WHERE m.listed_at >= r.started_at AND m.listed_at <= m.recorded_at`), "the list time is within the run")
	require.Equal(t, []string{"c-unstated/unstated"}, b.strings(t,
		`SELECT session_id || '/' || said FROM retention.memory_listings WHERE run_id = $1 AND said = 'unstated'`, sum.RunID))
	listed := b.count(t, `SELECT count(*) FROM retention.memory_listings WHERE run_id = $1 AND said = 'not_added'`, sum.RunID)
	require.GreaterOrEqual(t, listed, extra+1, "the extra sessions and c-s0001 at least")

	require.Len(t, store.batches, 2)
	require.Equal(t, 10_000, store.batches[0])
	require.Equal(t, listed+2, store.batches[0]+store.batches[1], "every listed session recorded, once")
	require.NotNil(t, sum.ListedMemory)
	require.Equal(t, job.RunMemorySummary{Lists: 1, Sessions: int64(listed + 2), Added: 1, NotAdded: int64(listed), Unstated: 1},
		*sum.ListedMemory)
}

// TestRunWithoutRefusalsRecordsNoMemory: a run the API refuses nothing lists nothing, records no
// flag and says nothing of the run's lists.
func TestRunWithoutRefusalsRecordsNoMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 5, days(2))
	b.fake.SetAddedToMemory("c", "c-s0002", true)
	store := &countingStore{Store: b.store}
	r, err := job.New(store, b.send, fastConfig())
	require.NoError(t, err)
	sum, err := r.Run(context.Background(), job.RunStart{Source: "test", Host: "test"})
	require.NoError(t, err)
	require.EqualValues(t, 5, sum.Deleted)
	require.Zero(t, b.listRequests())
	require.Empty(t, store.batches)
	require.Nil(t, sum.ListedMemory)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.memory_sightings`))
}

// TestErasureRequestListRecordsMemory: the list a run reads for a character's erasure request
// records what it said of each session; the sessions it showed as added and the request then
// deleted are, for the report's view, deleted sessions a run's list showed in memory.
func TestErasureRequestListRecordsMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.seed(t, "c", 2, days(1))
	b.fake.AddSession("c", "never-stored", time.Now())
	b.fake.SetAddedToMemory("c", "c-s0000", true)
	b.fake.SetAddedToMemory("c", "never-stored", true)
	id := b.fileErasure(t, "c", nil, "asked for everything")

	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, []int64{id}, sum.Erasure.Completed)
	require.EqualValues(t, 2, sum.Erasure.ListedInMemory)
	require.Equal(t, []string{"c-s0000", "never-stored"}, b.strings(t,
		`SELECT session_id FROM retention.memory_sightings WHERE run_id = $1 ORDER BY 1`, sum.RunID))
	require.Equal(t, []string{"c-s0001/not_added"}, b.strings(t,
		`SELECT session_id || '/' || said FROM retention.memory_listings WHERE run_id = $1`, sum.RunID))
	require.Equal(t, &job.RunMemorySummary{Lists: 1, Sessions: 3, Added: 2, NotAdded: 1}, sum.ListedMemory)

	require.Equal(t, []string{
		fmt.Sprintf("c-s0000/run/%d/%d", sum.RunID, id),
		fmt.Sprintf("never-stored/run/%d/%d", sum.RunID, id),
	}, b.strings(t, `SELECT session_id || '/' || listed_by || '/' || run_id || '/' || erasure_request_id
		FROM retention.deleted_in_memory WHERE verify_id IS NULL ORDER BY 1`))

	// A later verification's list cannot take the first list's place.
	b.fake.AddSession("c", "c-s0000", time.Now())
	b.fake.SetAddedToMemory("c", "c-s0000", true)
	_, err = b.verify(t, fastConfig(), job.VerifyScope{CharacterID: "c"})
	require.NoError(t, err)
	require.Equal(t, []string{"c-s0000/run", "never-stored/run"}, b.strings(t,
		`SELECT session_id || '/' || listed_by FROM retention.deleted_in_memory ORDER BY 1`))
}

// TestRunMemoryRecordingFailsAlone: when the flags cannot be recorded, the run deletes and
// records its deletions all the same; the summary counts the answers not recorded.
func TestRunMemoryRecordingFailsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.seed(t, "c", 3, days(1))
	b.fake.SetAddedToMemory("c", "c-s0001", true)
	id := b.fileErasure(t, "c", nil, "asked")
	b.exec(t, `ALTER TABLE retention.memory_listings ADD CONSTRAINT no_more CHECK (false) NOT VALID`)

	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.EqualValues(t, 3, sum.Deleted)
	require.Equal(t, []int64{id}, sum.Erasure.Completed)
	require.Equal(t, &job.RunMemorySummary{Lists: 1, Sessions: 3, Added: 1, NotAdded: 2, Unrecorded: 3}, sum.ListedMemory)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.memory_sightings`), "one call, refused whole")
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted' AND run_id = $1`, sum.RunID))
	require.False(t, strings.Contains(sum.Error, "memory"))
}
