package job_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// inMemory makes the fake's list say that sessions of character went into long-term memory.
func (b *bundle) inMemory(character string, ids ...string) {
	for _, id := range ids {
		b.fake.AddMemory(character, "user-1", convaitest.Memory{ID: "from-" + id, Text: "likes tea", SessionID: id})
	}
}

// deletedInMemory counts the deleted rows whose session a verification recorded as added to
// memory, as the report counts them.
func (b *bundle) deletedInMemory(t *testing.T) int {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM retention.deletions d
		WHERE d.status = 'deleted' AND EXISTS (SELECT 1 FROM retention.memory_sightings m
		                                       WHERE m.character_id = d.character_id AND m.session_id = d.session_id)`)
}

// TestVerifyRecordsWhatWentIntoMemory: verify records every session its lists show as added to
// memory, once: a live session seen so before its deletion, and a deleted one found present.
// A session no list showed so is not counted, whatever became of it.
func TestVerifyRecordsWhatWentIntoMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 3, days(2))
	b.seed(t, "d", 1, days(2))
	b.live(t, "c")
	b.live(t, "d")
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES ('c', 'c-late', now() - interval '12 hours')`)
	b.fake.AddSession("c", "c-late", time.Now())
	b.inMemory("c", "c-s0000", "c-late", "c-live") // c-s0000 is deleted before any list sees it
	require.EqualValues(t, 4, b.realRun(t).Deleted)

	sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
	require.NoError(t, err)
	require.Equal(t, job.VerifyFinished, sum.Status)
	require.Equal(t, []job.VerifiedCharacter{
		{CharacterID: "c", Checked: 3, Absent: 3, ListedInMemory: 2},
		{CharacterID: "d", Checked: 1, Absent: 1},
	}, sum.Characters)
	require.Equal(t, []string{"c/c-late", "c/c-live"},
		b.strings(t, `SELECT character_id || '/' || session_id FROM retention.memory_sightings`))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.memory_sightings m JOIN retention.verify_runs v ON v.id = m.verify_id
		WHERE m.listed_at >= v.started_at AND m.listed_at <= m.recorded_at`))
	require.Zero(t, b.deletedInMemory(t), "nothing deleted was seen in memory yet")

	// c-late expires and is deleted; c-s0001 comes back at Convai, added to memory.
	b.exec(t, `UPDATE retention.sessions SET last_active_at = now() - interval '2 days' WHERE session_id = 'c-late'`)
	require.EqualValues(t, 1, b.realRun(t).Deleted)
	b.fake.AddSession("c", "c-s0001", time.Now())
	b.inMemory("c", "c-s0001")
	sum, err = b.verify(t, fastConfig(), job.VerifyScope{CharacterID: "c"})
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Present)
	require.EqualValues(t, 2, sum.Characters[0].ListedInMemory, "c-live and c-s0001")
	require.Equal(t, []string{"c/c-late", "c/c-live", "c/c-s0001"},
		b.strings(t, `SELECT character_id || '/' || session_id FROM retention.memory_sightings`), "each session once")
	require.Equal(t, 2, b.deletedInMemory(t), "c-late, seen before its deletion; c-s0001, found present")
	require.Equal(t, 1, b.count(t, `SELECT count(DISTINCT verify_id) FROM retention.memory_sightings WHERE session_id IN ('c-late', 'c-live')`),
		"the first list that showed it")
	for _, r := range b.fake.Requests() {
		require.NotContains(t, r.Endpoint, "memory", "nothing calls the memory endpoints unless asked")
		require.NotEqual(t, convaitest.EndpointEndUserDelete, r.Endpoint)
	}
	require.Len(t, b.fake.Memories("c", "user-1"), 4, "deleting chat history leaves the memories")
}

// TestVerifyRecordsMemoryInBatches: a list with more sessions in memory than a batch records them
// all, batch by batch, and a verify that cannot record stops with the database's error.
func TestVerifyRecordsMemoryInBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "big", 1, days(2))
	b.live(t, "big")
	b.realRun(t)
	n := job.VerifyBatchSize + 7
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "mem-" + time.Duration(i).String()
		b.fake.AddSession("big", ids[i])
	}
	b.inMemory("big", ids...)
	overlong := string(make([]byte, 300)) // never a session's ID: counted, not recorded
	b.fake.AddSession("big", overlong)
	b.inMemory("big", overlong)
	cfg := fastConfig()
	cfg.RequestTimeout = time.Minute // the size is the point, not the time
	sum, err := b.verify(t, cfg, job.VerifyScope{})
	require.NoError(t, err)
	require.EqualValues(t, n+1, sum.Characters[0].ListedInMemory)
	require.Equal(t, n, b.count(t, `SELECT count(*) FROM retention.memory_sightings`))

	b.exec(t, `ALTER TABLE retention.memory_sightings ADD CONSTRAINT no_more CHECK (false) NOT VALID`)
	b.inMemory("big", "one-more")
	b.fake.AddSession("big", "one-more")
	sum, err = b.verify(t, cfg, job.VerifyScope{})
	require.ErrorContains(t, err, "record what the list of big said of long-term memory")
	require.Equal(t, job.VerifyFailed, sum.Status)
}

// TestSettleSaysARefusedSessionWentIntoMemory: a refused session still listed fails, and its note
// says that Convai listed it as added to memory.
func TestSettleSaysARefusedSessionWentIntoMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: []string{"c-s0002"}}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 4, days(2))
	b.live(t, "c")
	b.inMemory("c", "c-s0002")
	cfg := fastConfig()
	cfg.ChunkSize = 4
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Failed)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions
		WHERE session_id = 'c-s0002' AND status = 'failed'
		  AND error LIKE 'rejected with HTTP 400%; present in the list, and added to long-term memory'`))
}

// TestDiscoverCountsMissingSessionsInMemory: discover counts the sessions the app never stored
// that Convai drew memory from.
func TestDiscoverCountsMissingSessionsInMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 1, days(3))
	now := time.Now()
	b.fake.AddSession("c", "lost-old", now.Add(-72*time.Hour))
	b.fake.AddSession("c", "lost-recent", now.Add(-time.Hour))
	b.inMemory("c", "c-s0000", "lost-old", "lost-recent")
	sum, err := b.discover(t, job.DiscoverOptions{DryRun: true, CanAdd: true})
	require.NoError(t, err)
	require.Equal(t, []job.DiscoveredCharacter{
		{CharacterID: "c", Listed: 3, Missing: 2, Expired: 1, Recent: 1, InMemory: 2},
	}, sum.Characters, "c-s0000 is stored: not counted")
}

// TestErasureCountsSessionsInMemory: a character's erasure request counts the sessions it
// deletes that Convai listed as added to memory; a session's request lists nothing.
func TestErasureCountsSessionsInMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	b.seed(t, "c", 3, days(1))
	b.seed(t, "d", 2, days(1))
	b.fake.AddSession("c", "never-stored", time.Now())
	b.inMemory("c", "c-s0000", "never-stored")
	b.inMemory("d", "d-s0000")
	b.fileErasure(t, "c", nil, "asked by the user")
	b.fileErasure(t, "d", "d-s0001", "asked by the user")
	sum := b.realRun(t)
	require.NotNil(t, sum.Erasure)
	require.EqualValues(t, 5, sum.Erasure.Deleted, "c's three, never-stored, d-s0001")
	require.EqualValues(t, 2, sum.Erasure.ListedInMemory)
	require.Len(t, b.fake.Memories("c", "user-1"), 2, "deleting chat history leaves the memories")
}

// memoryLeftObserver keeps what a verification said was left in long-term memory.
type memoryLeftObserver struct{ left []job.MemoryLeft }

func (o *memoryLeftObserver) Verified(int, int)           {}
func (o *memoryLeftObserver) MemoryLeft(l job.MemoryLeft) { o.left = append(o.left, l) }

// TestVerifyRecordsEveryMemoryAnswer: verify records what its lists say of each session's
// is_added_to_memory: true (a sighting, with the end user the set names), false, and absent or
// unreadable (unstated, never taken as false). A completed erasure request whose session went
// into memory leaves memory behind until that end user's memory is erased, and verify says so.
func TestVerifyRecordsEveryMemoryAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 1, days(2))
	b.live(t, "c")
	require.EqualValues(t, 1, b.realRun(t).Deleted)
	for id, said := range map[string]string{"c-yes": "true", "c-anon": "true", "c-no": "false", "c-absent": convaitest.ListFlagAbsent, "c-odd": `"yes"`} {
		b.fake.AddSession("c", id, time.Now())
		b.fake.SetListFlag("c", id, said)
	}
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
		VALUES ('c', 'c-yes', now(), 'u1'), ('c', 'c-anon', now(), NULL), ('c', 'c-no', now(), 'u1'), ('c', 'c-absent', now(), NULL),
		       ('c', 'c-odd', now(), NULL)`)

	obs := &memoryLeftObserver{}
	sum, err := job.Verify(context.Background(), b.store, b.send.(job.Lister), fastConfig(), obs, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	require.Equal(t, []job.VerifiedCharacter{{CharacterID: "c", Checked: 1, Absent: 1, ListedInMemory: 2, ListedMemoryUnstated: 2}}, sum.Characters)
	require.Equal(t, []string{"c-anon/-", "c-yes/u1"}, b.strings(t, `SELECT session_id || '/' || coalesce(end_user_id, '-') FROM retention.memory_sightings`))
	require.Equal(t, []string{"c-absent/unstated", "c-live/not_added", "c-no/not_added", "c-odd/unstated"},
		b.strings(t, `SELECT session_id || '/' || said FROM retention.memory_listings`))
	require.Equal(t, &job.MemoryLeft{}, sum.MemoryLeft, "nothing deleted went into memory yet")

	// The whole character is erased: c-yes and c-anon went into memory, and their memory stays.
	request := b.fileErasure(t, "c", nil, "asked by the user")
	b.realRun(t)
	state, _ := b.erasureState(t, request)
	require.Equal(t, "completed", state)
	sum, err = job.Verify(context.Background(), b.store, b.send.(job.Lister), fastConfig(), obs, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	require.Equal(t, &job.MemoryLeft{Sessions: 2, EndUserUnknown: 1, ErasureRequests: 1}, sum.MemoryLeft)
	require.Equal(t, []string{fmt.Sprintf("%d/2/{u1}", request)},
		b.strings(t, `SELECT request_id || '/' || sessions_in_memory || '/' || end_user_ids::text FROM retention.erasure_memory_left`))

	// u1's memory of c is erased: only c-anon's is left, whose end user no erasure by end user
	// can name, so the request no longer counts for the alert.
	b.fake.AddMemory("c", "u1", convaitest.Memory{ID: "m1", Text: "likes tea"})
	eu := b.fileEndUser(t, "u1", "c", false)
	b.realRun(t)
	require.Equal(t, "completed", b.endUserState(t, eu))
	sum, err = job.Verify(context.Background(), b.store, b.send.(job.Lister), fastConfig(), obs, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	require.Equal(t, &job.MemoryLeft{Sessions: 1, EndUserUnknown: 1}, sum.MemoryLeft)
	require.Len(t, obs.left, 3, "every verification that ends tells the observer")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deleted_in_memory
		WHERE session_id = 'c-yes' AND end_user_id = 'u1' AND memory_erased_at >= deleted_at`))
}

// TestDiscoverRecordsMemoryAnswers: discover keeps what the list said of the memory of each
// session it adds; a deleted one that went into memory counts as such.
func TestDiscoverRecordsMemoryAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.live(t, "c")
	old := time.Now().Add(-72 * time.Hour)
	for id, said := range map[string]string{"lost-yes": "true", "lost-no": "false", "lost-absent": convaitest.ListFlagAbsent} {
		b.fake.AddSession("c", id, old)
		b.fake.SetListFlag("c", id, said)
	}
	sum, err := b.discover(t, job.DiscoverOptions{CanAdd: true})
	require.NoError(t, err)
	require.EqualValues(t, 3, sum.Characters[0].Added)
	require.Equal(t, []string{"lost-absent/unstated", "lost-no/not_added", "lost-yes/added"},
		b.strings(t, `SELECT session_id || '/' || memory FROM retention.discoveries`))
	require.EqualValues(t, 3, b.realRun(t).Deleted)
	require.Equal(t, []string{"lost-yes/discover"}, b.strings(t, `SELECT session_id || '/' || listed_by FROM retention.deleted_in_memory`))
}
