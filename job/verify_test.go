package job_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// realRun runs with the built-in source named as such, so records remove the source rows of
// deleted sessions as the binary's runs do.
func (b *bundle) realRun(t *testing.T) *job.Summary {
	t.Helper()
	r, err := job.New(b.store, b.send, fastConfig())
	require.NoError(t, err)
	sum, err := r.Run(context.Background(), job.RunStart{Source: "retention.sessions", Host: "test"})
	require.NoError(t, err)
	return sum
}

type countingVerifyObserver struct{ present, absent atomic.Int64 }

func (c *countingVerifyObserver) Verified(present, absent int) {
	c.present.Add(int64(present))
	c.absent.Add(int64(absent))
}

func (b *bundle) verify(t *testing.T, cfg job.Config, scope job.VerifyScope) (*job.VerifySummary, error) {
	t.Helper()
	return job.Verify(context.Background(), b.store, b.send.(job.Lister), cfg, nil, job.VerifyStart{Scope: scope, Host: "test"})
}

// chainIntact recomputes every verification batch's hash from its rows.
func (b *bundle) chainIntact(t *testing.T) bool {
	t.Helper()
	return b.count(t, `
		SELECT count(*) FROM retention.verification_batches b
		WHERE b.hash <> sha256(b.prev_hash || retention.verification_content(b.seq))
		   OR b.prev_hash <> coalesce((SELECT p.hash FROM retention.verification_batches p WHERE p.seq = b.seq - 1),
		                              '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)`) == 0
}

func TestVerifyFindsASessionThatReappeared(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 5, days(2))
	b.seed(t, "d", 3, days(2))
	b.live(t, "c")
	b.live(t, "d")
	require.EqualValues(t, 8, b.realRun(t).Deleted)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.sessions`), "deleted sessions leave the built-in source")

	b.fake.AddSession("c", "c-s0002", time.Now()) // Convai has it again
	obs := &countingVerifyObserver{}
	sum, err := job.Verify(context.Background(), b.store, b.send.(job.Lister), fastConfig(), obs, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	require.Equal(t, job.VerifyFinished, sum.Status)
	require.EqualValues(t, 8, sum.Checked)
	require.EqualValues(t, 1, sum.Present)
	require.EqualValues(t, 7, sum.Absent)
	require.Equal(t, []job.VerifiedCharacter{
		{CharacterID: "c", Checked: 5, Present: 1, Absent: 4, PresentIDs: []string{"c-s0002"}},
		{CharacterID: "d", Checked: 3, Absent: 3},
	}, sum.Characters)
	require.EqualValues(t, 1, obs.present.Load())
	require.EqualValues(t, 7, obs.absent.Load())
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.verifications WHERE result = 'present' AND session_id = 'c-s0002'`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.verify_runs WHERE status = 'finished' AND checked = 8 AND present = 1`))
	require.True(t, b.chainIntact(t))

	// The session is waiting again: back in the source, no longer deleted, and the next run sends it.
	require.Equal(t, []string{"c/c-live", "c/c-s0002", "d/d-live"}, b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM retention.sessions s WHERE retention.is_deleted(s.character_id, s.session_id)`))
	second := b.realRun(t)
	require.EqualValues(t, 1, second.Deleted)
	require.False(t, b.fake.HasSession("c", "c-s0002"))
	require.Equal(t, []string{"0", "1"}, b.strings(t, `SELECT epoch::text FROM retention.outcomes
		WHERE session_id = 'c-s0002' AND status = 'deleted' ORDER BY epoch`), "the old deletion stays as history")

	// The refuted deletion is not checked again; the new one is.
	sum, err = b.verify(t, fastConfig(), job.VerifyScope{CharacterID: "c"})
	require.NoError(t, err)
	require.EqualValues(t, 5, sum.Checked)
	require.Zero(t, sum.Present)
	require.True(t, b.chainIntact(t))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM retention.verification_batches`), "one batch per character per verify")
}

func TestVerifySampleAndSince(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 6, days(2))
	b.live(t, "c")
	b.realRun(t)
	sum, err := b.verify(t, fastConfig(), job.VerifyScope{Sample: 2})
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.Checked)
	sum, err = b.verify(t, fastConfig(), job.VerifyScope{Since: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Zero(t, sum.Checked, "nothing was deleted since then")
	require.Empty(t, sum.Characters)
}

// TestVerifyLargeList checks deletions against a character with a long list at Convai.
func TestVerifyLargeList(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "big", 3, days(2))
	b.realRun(t)
	const listed = 50_000
	at := time.Now()
	for i := range listed {
		b.fake.AddSession("big", fmt.Sprintf("other-%06d", i), at)
	}
	b.fake.AddSession("big", "big-s0001", at)
	cfg := fastConfig()
	cfg.RequestTimeout = time.Minute // a list of 50,000 on a busy machine: the size is the point, not the time
	sum, err := b.verify(t, cfg, job.VerifyScope{})
	require.NoError(t, err)
	require.EqualValues(t, 3, sum.Checked)
	require.EqualValues(t, 1, sum.Present)
	require.Equal(t, []string{"big-s0001"}, sum.Characters[0].PresentIDs)
}

func TestVerifyFaults(t *testing.T) {
	t.Parallel()
	prepare := func(t *testing.T, o setupOpts) *bundle {
		b := setup(t, o)
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
		b.seed(t, "c", 3, days(2))
		b.seed(t, "d", 2, days(2))
		b.live(t, "c")
		b.live(t, "d")
		b.realRun(t)
		return b
	}
	t.Run("transient faults are retried", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, setupOpts{})
		b.fake.AddSession("d", "d-s0001", time.Now())
		b.fake.Update(func(o *convaitest.Options) {
			o.Seed, o.FailRate, o.RateLimitRate, o.DropRate, o.UnconfirmedRate, o.RetryAfter = 3, 0.2, 0.1, 0.1, 0.1, time.Millisecond
		})
		cfg := fastConfig()
		cfg.MaxAttempts = 30
		sum, err := b.verify(t, cfg, job.VerifyScope{})
		require.NoError(t, err)
		require.Equal(t, job.VerifyFinished, sum.Status)
		require.EqualValues(t, 5, sum.Checked)
		require.EqualValues(t, 1, sum.Present, "a list cut short is never read as complete")
		st := b.fake.Stats().Outcomes
		require.Positive(t, st[convaitest.OutcomeFailed]+st[convaitest.OutcomeRateLimited]+st[convaitest.OutcomeDropped]+st[convaitest.OutcomeUnconfirmed])
	})
	t.Run("a list that keeps failing leaves the character unverified", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, setupOpts{})
		b.fake.Update(func(o *convaitest.Options) { o.FailRate = 1 })
		cfg := fastConfig()
		cfg.MaxAttempts = 2
		sum, err := b.verify(t, cfg, job.VerifyScope{CharacterID: "c"})
		require.NoError(t, err)
		require.Equal(t, job.VerifyIncomplete, sum.Status)
		require.EqualValues(t, 1, sum.Unlisted)
		require.Zero(t, sum.Checked)
		require.Contains(t, sum.Characters[0].Error, "no complete list after 2 attempts")
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.verifications`))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.verify_runs WHERE status = 'incomplete' AND unlisted = 1`))
	})
	t.Run("a rejected key stops it", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, setupOpts{})
		b.fake.SetAPIKey("rotated")
		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.ErrorIs(t, err, job.ErrKeyRejected)
		require.Equal(t, job.VerifyFailed, sum.Status)
		require.Len(t, b.fake.Requests(), 2+1, "two deletes, one list: nothing after the 401")
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.verify_runs WHERE status = 'failed' AND error LIKE '%rejected the key%'`))
	})
	t.Run("a hung list is bounded by the request timeout", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, setupOpts{handler: func(fake http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == convaitest.ListPath {
					_, _ = io.Copy(io.Discard, r.Body) // only then does the server notice the client leave
					<-r.Context().Done()
					return
				}
				fake.ServeHTTP(w, r)
			})
		}})
		cfg := fastConfig()
		cfg.RequestTimeout, cfg.MaxAttempts = 50*time.Millisecond, 2
		sum, err := b.verify(t, cfg, job.VerifyScope{CharacterID: "d"})
		require.NoError(t, err)
		require.Equal(t, job.VerifyIncomplete, sum.Status)
	})
}

// TestVerifyNeedsAWitness: a list that shows none of the character's live sessions (an empty
// one, or one of sessions the job knows nothing of) verifies nothing: the deletions stay
// unverified, the character is counted unlisted with the reason, and the run is incomplete.
func TestVerifyNeedsAWitness(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 3, days(2))
	b.seed(t, "d", 2, days(2))
	b.live(t, "d")
	b.realRun(t)
	b.fake.AddSession("c", "stranger", time.Now()) // listed, but not a session the job knows

	sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
	require.NoError(t, err)
	require.Equal(t, job.VerifyIncomplete, sum.Status)
	require.EqualValues(t, 1, sum.Unlisted)
	require.EqualValues(t, 2, sum.Checked, "d's list shows d-live: its deletions are verified")
	require.Equal(t, "c", sum.Characters[0].CharacterID)
	require.Contains(t, sum.Characters[0].Error, "shows none of the sessions the job knows are live (1 listed)")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.verifications WHERE character_id = 'c'`))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM retention.verifications WHERE character_id = 'd' AND result = 'absent'`))
}

func TestVerificationsAreTamperEvident(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 3, days(2))
	b.realRun(t)
	b.fake.AddSession("c", "c-s0000", time.Now())
	_, err := b.verify(t, fastConfig(), job.VerifyScope{})
	require.NoError(t, err)
	require.True(t, b.chainIntact(t))

	_, err = b.pool.Exec(context.Background(), `UPDATE retention.verifications SET result = 'absent'`)
	require.ErrorContains(t, err, "append-only")
	_, err = b.pool.Exec(context.Background(), `DELETE FROM retention.verification_batches`)
	require.Error(t, err)

	// The owner can switch the guard off; the chain then shows the edit.
	b.exec(t, `ALTER TABLE retention.verifications DISABLE TRIGGER verifications_append_only`)
	b.exec(t, `UPDATE retention.verifications SET result = 'absent' WHERE session_id = 'c-s0000'`)
	require.False(t, b.chainIntact(t))

	// A verification needs its credentials and only names deleted rows.
	_, err = b.pool.Exec(context.Background(), `SELECT retention.record_verifications(1, 'wrong', 'c', now(), ARRAY[1::bigint], ARRAY[false])`)
	require.ErrorContains(t, err, "not its credentials")
}
