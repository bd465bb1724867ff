package job_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

func (b *bundle) discover(t *testing.T, o job.DiscoverOptions) (*job.DiscoverSummary, error) {
	t.Helper()
	return job.Discover(context.Background(), b.store, b.send.(job.Lister), b.send.(job.Detailer), fastConfig(), o)
}

func TestDiscoverAddsWhatTheAppNeverStored(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES
		(NULL, '1 day', true), ('d', '2 days', true), ('off', '1 day', false)`)
	b.seed(t, "c", 1, days(3)) // c-s0000: stored, and at Convai
	now := time.Now()
	b.fake.AddSession("c", "lost-old", now.Add(-72*time.Hour), now.Add(-50*time.Hour))
	b.fake.AddSession("c", "lost-continued", now.Add(-72*time.Hour), now.Add(-time.Hour)) // started long ago, went on
	b.fake.AddSession("c", "lost-recent", now.Add(-time.Hour))
	b.fake.AddSession("c", "lost-undated")
	b.fake.AddSession("d", "d-lost", now.Add(-80*time.Hour))
	b.fake.AddSession("off", "off-lost", now.Add(-80*time.Hour))

	sum, err := b.discover(t, job.DiscoverOptions{DryRun: true, CanAdd: true})
	require.NoError(t, err)
	require.Equal(t, []job.DiscoveredCharacter{
		{CharacterID: "c", Listed: 5, Missing: 4, Expired: 1, Recent: 1, Undated: 1},
		{CharacterID: "d", Listed: 1, Missing: 1, Expired: 1},
	}, sum.Characters, "off's policy is disabled; d is known by its own policy")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions`), "a dry-run adds nothing")
	details := 0
	for _, r := range b.fake.Requests() {
		if r.Endpoint == "details" {
			details++
		}
	}
	require.Equal(t, 4, details, "details only for sessions whose list date is past the threshold")

	sum, err = b.discover(t, job.DiscoverOptions{CanAdd: true})
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.Characters[0].Added, "lost-old and lost-continued")
	require.EqualValues(t, 1, sum.Characters[1].Added)
	require.Equal(t, []string{"c/c-s0000", "c/lost-continued", "c/lost-old", "d/d-lost"},
		b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions
		WHERE session_id = 'lost-continued' AND last_active_at > now() - interval '2 hours'`), "last activity from the details")
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM retention.discoveries`))

	// The next run deletes what expired, and discover finds nothing new afterwards.
	run := b.realRun(t)
	require.EqualValues(t, 3, run.Deleted, "c-s0000, lost-old, d-lost")
	require.True(t, b.fake.HasSession("c", "lost-continued"))
	sum, err = b.discover(t, job.DiscoverOptions{Characters: []string{"c", "off"}, CanAdd: true})
	require.NoError(t, err)
	require.Equal(t, []job.DiscoveredCharacter{
		{CharacterID: "c", Listed: 3, Missing: 2, Recent: 1, Undated: 1},
		{CharacterID: "off", Error: "not discovered: no policy lets the job delete its sessions (disabled)"},
	}, sum.Characters)
}

func TestDiscoverWithAViewCountsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 1, days(3))
	b.fake.AddSession("c", "lost", time.Now().Add(-72*time.Hour))
	sum, err := b.discover(t, job.DiscoverOptions{CanAdd: false})
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Characters[0].Expired)
	require.Zero(t, sum.Characters[0].Added)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions`))
}

func TestDiscoverFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 1, days(3))
	b.fake.AddSession("c", "lost", time.Now().Add(-72*time.Hour))
	b.fake.SetAPIKey("rotated")
	_, err := b.discover(t, job.DiscoverOptions{CanAdd: true})
	require.ErrorIs(t, err, job.ErrKeyRejected)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions`))
}

// gatedDetailer holds each details request until want of them are in flight at once (or a
// second has passed, so a run with fewer workers is not stuck), and records the most in flight.
type gatedDetailer struct {
	next          job.Detailer
	want          int64
	inFlight, max atomic.Int64
}

func (g *gatedDetailer) Details(ctx context.Context, characterID, sessionID string) (time.Time, job.Answer) {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for m := g.max.Load(); n > m && !g.max.CompareAndSwap(m, n); m = g.max.Load() {
	}
	for deadline := time.Now().Add(time.Second); g.max.Load() < g.want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return g.next.Details(ctx, characterID, sessionID)
}

// Details are read --concurrency at a time, and the counts are those of one at a time.
func TestDiscoverReadsDetailsConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	old := time.Now().Add(-72 * time.Hour)
	for i := range 12 {
		b.fake.AddSession("c", fmt.Sprintf("lost-%02d", i), old, old.Add(time.Duration(i)*time.Hour))
	}
	b.fake.AddSession("c", "lost-undated")
	discover := func(concurrency int) (*job.DiscoverSummary, int64) {
		det := &gatedDetailer{next: b.send.(job.Detailer), want: int64(concurrency)}
		cfg := fastConfig()
		cfg.Concurrency = concurrency
		sum, err := job.Discover(context.Background(), b.store, b.send.(job.Lister), det, cfg,
			job.DiscoverOptions{Characters: []string{"c"}, DryRun: true, CanAdd: true})
		require.NoError(t, err)
		return sum, det.max.Load()
	}
	one, maxOne := discover(1)
	four, maxFour := discover(4)
	require.EqualValues(t, 1, maxOne)
	require.EqualValues(t, 4, maxFour, "four details requests in flight at once")
	require.Equal(t, one.Characters, four.Characters)
	require.Equal(t, []job.DiscoveredCharacter{{CharacterID: "c", Listed: 13, Missing: 13, Expired: 12, Undated: 1}}, four.Characters)
}

// A listed ID too long to be a Convai ID, and details whose latest interaction is far in the
// future or before the year 1, are skipped and counted as malformed: the character's other
// sessions are discovered, and nothing stops. A latest interaction a little in the future (the
// API's clock ahead of the database's) is taken as now.
func TestDiscoverSkipsUnusableSessions(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	now := time.Now()
	old := now.Add(-72 * time.Hour)
	b.fake.AddSession("c", "lost-old", old, now.Add(-50*time.Hour))
	b.fake.AddSession("c", strings.Repeat("x", policy.MaxIDLength+1), old)
	b.fake.AddSession("c", "future", old, now.Add(72*time.Hour))
	b.fake.AddSession("c", "ancient", time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC))
	b.fake.AddSession("c", "skewed", old, now.Add(time.Hour))

	for _, dry := range []bool{true, false} {
		sum, err := b.discover(t, job.DiscoverOptions{Characters: []string{"c"}, DryRun: dry, CanAdd: true})
		require.NoError(t, err)
		want := job.DiscoveredCharacter{CharacterID: "c", Listed: 5, Missing: 4, Expired: 1, Malformed: 3}
		if !dry {
			want.Added = 2
		}
		require.Equal(t, []job.DiscoveredCharacter{want}, sum.Characters, "dry-run %v", dry)
	}
	require.Equal(t, []string{"c/lost-old", "c/skewed"},
		b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions
		WHERE session_id = 'skewed' AND last_active_at <= now() AND last_active_at > now() - interval '1 hour'`),
		"a time a little ahead is taken as now")
	for _, r := range b.fake.Requests() {
		require.LessOrEqual(t, len(r.SessionIDs), 1)
		for _, id := range r.SessionIDs {
			require.LessOrEqual(t, len(id), policy.MaxIDLength, "an over-long ID is never sent")
		}
	}
}
