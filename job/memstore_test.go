package job_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// memStore is an in-memory job.Store: a source of records and one default policy, for tests of
// the job's own decisions (statuses, counts, the order of outcomes), where PostgreSQL would add
// nothing. The store's own contract is tested against PostgreSQL in package source.
type memStore struct {
	mu       sync.Mutex
	records  []policy.Record
	claims   []job.Claim
	recorded map[int64][]job.Outcome
	end      *job.RunEnd
	// failRecord makes every Record fail, as a database gone for good would.
	failRecord bool
}

func newMemStore(n int) *memStore {
	m := &memStore{recorded: map[int64][]job.Outcome{}}
	for i := range n {
		m.records = append(m.records, policy.Record{CharacterID: "c", SessionID: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			LastActive: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	return m
}

var cutoff = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (m *memStore) Now(context.Context) (time.Time, error) { return cutoff, nil }
func (m *memStore) Rules(context.Context, time.Time) ([]policy.Policy, []policy.Hold, error) {
	return []policy.Policy{{ID: 1, MaxAge: "30 days", Enabled: true, Threshold: cutoff.Add(-30 * 24 * time.Hour)}}, nil, nil
}
func (m *memStore) Undated(context.Context) (int64, error)                { return 0, nil }
func (m *memStore) UnmatchedHolds(context.Context) ([]policy.Hold, error) { return nil, nil }

// The in-memory store has no erasure requests: those are tested on PostgreSQL (erasure_test.go).
func (m *memStore) OpenErasures(context.Context, job.Shard) ([]job.ErasureWork, error) {
	return nil, nil
}
func (m *memStore) CompleteErasure(context.Context, int64) (bool, error) { return false, nil }
func (m *memStore) SourceSize(context.Context, job.Shard) (int64, error) {
	return int64(len(m.records)), nil
}
func (m *memStore) Page(_ context.Context, after job.Cursor, horizon time.Time, limit int) ([]policy.Record, error) {
	var out []policy.Record
	for _, r := range m.records {
		if after.Started && !r.LastActive.After(after.LastActive) {
			continue
		}
		if r.LastActive.After(horizon) || len(out) == limit {
			break
		}
		out = append(out, r)
	}
	return out, nil
}
func (m *memStore) ReadOnly(ctx context.Context, fn func(job.Reader) error) error { return fn(m) }
func (m *memStore) StartRun(context.Context, job.RunStart) (job.RunStore, job.RunInfo, error) {
	return m, job.RunInfo{ID: 1, Cutoff: cutoff}, nil
}
func (m *memStore) Claim(_ context.Context, c job.Chunk) (job.Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cl := job.Claim{ID: int64(len(m.claims) + 1), CharacterID: c.CharacterID}
	for _, r := range c.Sessions {
		cl.SessionIDs = append(cl.SessionIDs, r.SessionID)
	}
	m.claims = append(m.claims, cl)
	return cl, nil
}
func (m *memStore) Held(context.Context, string, []string) ([]string, error) { return nil, nil }

// Live counts those of ids the store has for characterID and has not recorded deleted.
func (m *memStore) Live(_ context.Context, characterID string, ids []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	deleted := map[string]bool{}
	for id, outs := range m.recorded {
		for i, o := range outs {
			if o.Deleted && m.claims[id-1].CharacterID == characterID {
				deleted[m.claims[id-1].SessionIDs[i]] = true
			}
		}
	}
	n := 0
	for _, r := range m.records {
		if r.CharacterID == characterID && slices.Contains(ids, r.SessionID) && !deleted[r.SessionID] {
			n++
		}
	}
	return n, nil
}
func (m *memStore) Record(_ context.Context, c job.Claim, outs []job.Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRecord {
		return errors.New("record: the database is gone")
	}
	m.recorded[c.ID] = outs
	return nil
}
func (m *memStore) CheckLock(context.Context) error { return nil }
func (m *memStore) Seal(context.Context) error      { return nil }
func (m *memStore) Finish(_ context.Context, end job.RunEnd) (job.Finished, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.end = &end
	var closed int64
	for _, c := range m.claims {
		if _, ok := m.recorded[c.ID]; !ok {
			closed += int64(len(c.SessionIDs))
		}
	}
	return job.Finished{Closed: closed}, nil
}
func (m *memStore) Close(context.Context) error { return nil }

// memRun runs the job over m against the stand-in endpoint with opts.
func memRun(t *testing.T, m *memStore, opts convaitest.Options, cfg job.Config) (*job.Summary, error, *convaitest.Fake) {
	t.Helper()
	opts.APIKey = testKey
	fake := convaitest.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); srv.Close() })
	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: testKey})
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	r, err := job.New(m, sender.Convai{Client: client}, cfg)
	require.NoError(t, err)
	sum, err := r.Run(context.Background(), job.RunStart{Source: "mem"})
	return sum, err, fake
}

// The job decides the final status: succeeded, partial when some failed, failed when the
// outcomes could not be written (those count as failed, and the store is told so).
func TestJobDecidesTheStatus(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency, cfg.MaxAttempts = 4, 1, 1

	m := newMemStore(10)
	sum, err, _ := memRun(t, m, convaitest.Options{}, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.Equal(t, job.StatusSucceeded, m.end.Status)
	require.EqualValues(t, 10, m.end.Deleted)

	m = newMemStore(10)
	sum, err, _ = memRun(t, m, convaitest.Options{RejectIDs: []string{"sba", "sda"}}, cfg)
	require.NoError(t, err)
	require.Equal(t, job.StatusPartial, sum.Status, "some failed")
	require.Equal(t, job.StatusPartial, m.end.Status)
	require.EqualValues(t, 2, m.end.Failed)
	require.EqualValues(t, 8, m.end.Deleted)

	m = newMemStore(10)
	m.failRecord = true
	sum, err, _ = memRun(t, m, convaitest.Options{}, cfg)
	require.ErrorContains(t, err, "the database is gone")
	require.Equal(t, job.StatusFailed, m.end.Status)
	require.EqualValues(t, 4, m.end.Failed, "the claim whose outcomes were lost counts as failed")
	require.EqualValues(t, 4, sum.Failed)
	require.Zero(t, sum.Deleted)
}

// Outcomes reach the store in the claim's order, whatever order bisection produced them in.
func TestOutcomesInTheClaimsOrder(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 8, 1
	m := newMemStore(8)
	_, err, fake := memRun(t, m, convaitest.Options{RejectIDs: []string{"sba", "sga"}}, cfg)
	require.NoError(t, err)
	require.Len(t, m.claims, 1)
	outs := m.recorded[m.claims[0].ID]
	ids := make([]string, len(outs))
	for i, o := range outs {
		ids[i] = o.SessionID
	}
	require.Equal(t, m.claims[0].SessionIDs, ids)
	require.Greater(t, len(fake.Requests()), 1, "the chunk was split")
	var failed []string
	for _, o := range outs {
		if !o.Deleted {
			failed = append(failed, o.SessionID)
		}
	}
	sort.Strings(failed)
	require.True(t, slices.Equal([]string{"sba", "sga"}, failed), "%v", failed)
}
