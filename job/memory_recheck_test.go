package job_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

// erasedEndUser erases the memory of end user u1 with c1 (one session, one memory) through a
// run, and adds a live session of c1 so that verify's list of c1 is a credible witness. It
// returns the end user's request and the memory erasure's id.
func (b *bundle) erasedEndUser(t *testing.T) (request, erasure int64) {
	t.Helper()
	b.endUserSessions(t, "u1", "c1", 1)
	b.live(t, "c1")
	request = b.fileEndUser(t, "u1", nil, false)
	_, err := b.run(t, memoryConfig())
	require.NoError(t, err)
	require.Equal(t, "completed", b.endUserState(t, request))
	require.Empty(t, b.fake.Memories("c1", "u1"))
	ids := b.int64s(t, `SELECT id FROM retention.memory_erasures WHERE request_id = $1 AND status = 'erased'`, request)
	require.Len(t, ids, 1)
	return request, ids[0]
}

// rechecks returns "erasure result listed total failure http" for every re-check, in order.
func (b *bundle) rechecks(t *testing.T) []string {
	t.Helper()
	return b.strings(t, `
		SELECT lpad(id::text, 4, '0') || ' ' || memory_erasure_id || ' ' || result || ' ' || coalesce(listed::text, '-') || ' ' ||
		       coalesce(total_count::text, '-') || ' ' || coalesce(failure, '-') || ' ' || coalesce(http_status::text, '-')
		FROM retention.memory_rechecks`)
}

// memoryStatus returns the character's memory_status in retention.end_user_memory.
func (b *bundle) memoryStatus(t *testing.T, request int64, character string) string {
	t.Helper()
	return b.strings(t, `SELECT memory_status FROM retention.end_user_memory WHERE request_id = $1 AND character_id = $2`,
		request, character)[0]
}

func TestVerifyRechecksErasedMemory(t *testing.T) {
	t.Parallel()

	t.Run("erased, then stays gone: the re-check confirms it, and the next run has nothing to erase", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		request, erasure := b.erasedEndUser(t)
		before := b.memoryCalls()
		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.Equal(t, job.VerifyFinished, sum.Status)
		require.Equal(t, &job.MemoryRechecks{StayedGone: 1}, sum.MemoryRechecks)
		require.Equal(t, before[convaitest.EndpointMemoryList]+1, b.memoryCalls()[convaitest.EndpointMemoryList], "one list")
		require.Equal(t, []string{"0001 " + itoa(erasure) + " gone 0 0 - 200"}, b.rechecks(t))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_rechecks r JOIN retention.verify_runs v ON v.id = r.verify_id
			WHERE r.listed_at >= v.started_at AND r.recorded_at >= r.listed_at`), "on the server's clock, within the verification")
		require.Equal(t, "erased", b.memoryStatus(t, request, "c1"))

		before = b.memoryCalls()
		run, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Nil(t, run.Erasure.EndUsers, "nothing open or reopened")
		require.Equal(t, before, b.memoryCalls())
	})

	t.Run("erased, then a memory reappears: the refutation is recorded and the next run erases again", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		request, erasure := b.erasedEndUser(t)
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back", Text: "likes tea"})
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back-2", Text: "lives in Lyon"})

		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.Equal(t, job.VerifyFinished, sum.Status, "a memory found is a refutation, not a failure to list")
		require.Equal(t, &job.MemoryRechecks{FoundAgain: 1, Found: []string{"u1/c1"}}, sum.MemoryRechecks)
		require.Equal(t, []string{"0001 " + itoa(erasure) + " found 2 2 - 200"}, b.rechecks(t))
		require.Equal(t, "found_again", b.memoryStatus(t, request, "c1"))
		require.Equal(t, "completed", b.endUserState(t, request), "its completion stands")
		require.Equal(t, 0, b.count(t, `SELECT characters_memory_erased FROM retention.end_user_erasure_status WHERE id = $1`, request),
			"but its memory no longer counts as erased")

		run, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		eu := run.Erasure.EndUsers
		require.NotNil(t, eu)
		require.Equal(t, []int64{request}, eu.Reopened)
		require.Zero(t, eu.Open)
		require.Equal(t, 1, eu.Erased)
		require.Empty(t, eu.Completed, "completed before, not by this run")
		require.Empty(t, b.fake.Memories("c1", "u1"))
		require.Equal(t, []string{"erased 1 0", "erased 2 0"}, b.strings(t, `
			SELECT status || ' ' || listed_before || ' ' || remaining FROM retention.memory_erasures
			WHERE request_id = $1 AND character_id = 'c1'`, request), "a new erasure row, whose list saw the memories, then none")
		require.Equal(t, "erased", b.memoryStatus(t, request, "c1"))
		require.Zero(t, run.Deleted, "the request's sessions were deleted; nothing is sent again")

		// The next verification re-checks the new erasure, not the refuted one.
		sum, err = b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.Equal(t, &job.MemoryRechecks{StayedGone: 1}, sum.MemoryRechecks)
		latest := b.int64s(t, `SELECT max(id) FROM retention.memory_erasures WHERE request_id = $1`, request)[0]
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_rechecks WHERE memory_erasure_id = $1 AND result = 'gone'`, latest))

		// And the run after that has nothing to erase.
		before := b.memoryCalls()
		run, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Nil(t, run.Erasure.EndUsers)
		require.Equal(t, before, b.memoryCalls())
	})

	t.Run("a reappeared memory of an open request: the request stays open and the run erases again", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.endUserSessions(t, "u1", "c1", 1)
		b.endUserSessions(t, "u1", "c2", 1)
		b.live(t, "c1")
		b.live(t, "c2")
		b.fake.Update(func(o *convaitest.Options) { o.ForeignCharacters = []string{"c2"} })
		request := b.fileEndUser(t, "u1", nil, false)
		_, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, "open", b.endUserState(t, request), "c2's memory is forbidden")
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back"})

		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.Equal(t, &job.MemoryRechecks{FoundAgain: 1, Found: []string{"u1/c1"}}, sum.MemoryRechecks, "c2 was never erased: not re-checked")
		require.Equal(t, "found_again", b.memoryStatus(t, request, "c1"))

		b.fake.Update(func(o *convaitest.Options) { o.ForeignCharacters = nil })
		run, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, 2, run.Erasure.EndUsers.Erased, "c1 again, and c2")
		require.Equal(t, []int64{request}, run.Erasure.EndUsers.Completed)
		require.Empty(t, b.fake.Memories("c1", "u1"))
	})

	t.Run("404 and 403: not checked, nothing refuted, nothing erased again", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name    string
			fault   func(o *convaitest.Options)
			failure string
		}{
			{"no memory", func(o *convaitest.Options) { o.NoMemory = true }, "unavailable"},
			{"foreign", func(o *convaitest.Options) { o.ForeignCharacters = []string{"c1"} }, "forbidden"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{})
				request, erasure := b.erasedEndUser(t)
				b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back"}) // there, but the key cannot see it
				b.fake.Update(c.fault)

				sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
				require.NoError(t, err)
				require.Equal(t, &job.MemoryRechecks{NotChecked: 1}, sum.MemoryRechecks)
				want := http.StatusNotFound
				if c.failure == "forbidden" {
					want = http.StatusForbidden
				}
				require.Equal(t, []string{"0001 " + itoa(erasure) + " not_checked - - " + c.failure + " " + itoa(int64(want))}, b.rechecks(t))
				require.Equal(t, "erased", b.memoryStatus(t, request, "c1"), "not refuted")

				before := b.memoryCalls()
				run, err := b.run(t, memoryConfig())
				require.NoError(t, err)
				require.Nil(t, run.Erasure.EndUsers)
				require.Equal(t, before, b.memoryCalls())
			})
		}
	})

	t.Run("a 5xx is retried; when the retries run out it is not checked", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		_, erasure := b.erasedEndUser(t)
		b.fake.Update(func(o *convaitest.Options) { o.FailRate = 1 })
		cfg := fastConfig()
		cfg.MaxAttempts, cfg.MaxRetryAfter = 3, time.Millisecond
		sum, err := b.verify(t, cfg, job.VerifyScope{CharacterID: "c9"})
		require.NoError(t, err)
		require.Nil(t, sum.MemoryRechecks, "the scope's character has no erased memory")
		require.Empty(t, b.rechecks(t))

		sum, err = b.verify(t, cfg, job.VerifyScope{CharacterID: "c1"})
		require.NoError(t, err)
		require.EqualValues(t, 1, sum.Unlisted, "the sessions' list failed too")
		require.Equal(t, &job.MemoryRechecks{NotChecked: 1}, sum.MemoryRechecks)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_rechecks
			WHERE memory_erasure_id = $1 AND result = 'not_checked' AND failure = 'failed' AND http_status >= 500 AND attempts = 3`, erasure))
	})

	t.Run("off until asked: without an erased memory, verify calls no memory endpoint", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 hour')`)
		b.endUserSessions(t, "u1", "c1", 2) // memories at Convai, sessions deleted by age: no erasure
		b.live(t, "c1")
		_, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.EqualValues(t, 2, sum.Checked)
		require.Nil(t, sum.MemoryRechecks)
		require.Empty(t, b.memoryCalls())
		require.Empty(t, b.rechecks(t))

		// A request whose erasure is pending, not erased: still nothing to re-check.
		b2 := setup(t, setupOpts{fake: convaitest.Options{StuckDeleteAll: true}})
		b2.endUserSessions(t, "u1", "c1", 1)
		b2.live(t, "c1")
		b2.fileEndUser(t, "u1", nil, false)
		_, err = b2.run(t, memoryConfig())
		require.NoError(t, err)
		before := b2.memoryCalls()
		sum, err = b2.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.Nil(t, sum.MemoryRechecks)
		require.Equal(t, before, b2.memoryCalls())
	})

	t.Run("the database records a re-check only of erased memories of one end user and character, listed after them, by a running verification; append-only", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{fake: convaitest.Options{StuckDeleteAll: true}})
		b.endUserSessions(t, "u1", "c1", 1)
		b.endUserSessions(t, "u2", "c1", 1)
		b.fileEndUser(t, "u1", nil, false)
		_, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		pending := b.int64s(t, `SELECT id FROM retention.memory_erasures WHERE status = 'pending'`)[0]
		b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = false })
		b.fileEndUser(t, "u2", nil, false)
		_, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		erased := b.int64s(t, `SELECT id FROM retention.memory_erasures WHERE status = 'erased' ORDER BY id`)
		require.Len(t, erased, 2, "u1 then u2")

		ctx := context.Background()
		vs, info, err := b.store.StartVerify(ctx, job.VerifyStart{Host: "test"})
		require.NoError(t, err)
		now, err := vs.Now(ctx)
		require.NoError(t, err)
		gone := job.MemoryRecheck{Result: job.RecheckGone, ListedAt: now, HTTPStatus: 200, Attempts: 1}
		for what, r := range map[string]job.MemoryRecheck{
			"a pending erasure":             with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = []int64{pending} }),
			"two end users in one list":     with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = erased }),
			"no erasure":                    with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = nil }),
			"an unknown erasure":            with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = []int64{1 << 40} }),
			"a list before the verify":      with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs, r.ListedAt = erased[:1], info.Started.Add(-time.Hour) }),
			"gone with memories":            with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs, r.Count = erased[:1], job.MemoryCount{TotalCount: 1} }),
			"found with none":               with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs, r.Result = erased[:1], job.RecheckFound }),
			"not checked without its class": with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs, r.Result = erased[:1], job.RecheckNotChecked }),
		} {
			require.Error(t, vs.RecordMemoryRecheck(ctx, r), what)
		}
		require.NoError(t, vs.RecordMemoryRecheck(ctx, with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = erased[1:] })))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_rechecks`))
		_, err = b.pool.Exec(ctx, `UPDATE retention.memory_rechecks SET result = 'found', listed = 1, total_count = 1`)
		require.Error(t, err, "append-only")
		_, err = b.pool.Exec(ctx, `DELETE FROM retention.memory_rechecks`)
		require.Error(t, err, "append-only")
		require.NoError(t, vs.Finish(ctx, job.VerifyEnd{Status: job.VerifyFinished}))
		require.Error(t, vs.RecordMemoryRecheck(ctx, with(gone, func(r *job.MemoryRecheck) { r.ErasureIDs = erased[1:] })),
			"a finished verification records nothing")
	})
}

func with(r job.MemoryRecheck, f func(*job.MemoryRecheck)) job.MemoryRecheck {
	f(&r)
	return r
}

// A completed request whose erased memory a verification found again is reopened until an
// erasure of that memory stands: a hold still wins, a re-check that could not check does not
// undo the refutation, and a second erasure that ends pending is asked again.
func TestReopenedMemoryErasure(t *testing.T) {
	t.Parallel()

	// foundAgain erases u1's memory with c1, puts a memory back and lets verify find it.
	foundAgain := func(t *testing.T, b *bundle) (request, erasure int64) {
		t.Helper()
		request, erasure = b.erasedEndUser(t)
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back"})
		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.EqualValues(t, 1, sum.MemoryRechecks.FoundAgain)
		return request, erasure
	}
	reopened := func(t *testing.T, b *bundle, request int64) bool {
		t.Helper()
		return b.count(t, `SELECT count(*) FROM retention.end_user_memory WHERE request_id = $1 AND character_id = 'c1' AND memory_reopened`,
			request) == 1
	}

	t.Run("found, then not checked: the refutation stands", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		request, erasure := foundAgain(t, b)
		b.fake.Update(func(o *convaitest.Options) { o.NoMemory = true })
		sum, err := b.verify(t, fastConfig(), job.VerifyScope{})
		require.NoError(t, err)
		require.EqualValues(t, 1, sum.MemoryRechecks.NotChecked)
		require.Len(t, b.rechecks(t), 2)
		require.Equal(t, "found_again", b.memoryStatus(t, request, "c1"), "a 404 neither confirms nor refutes")
		require.True(t, reopened(t, b, request))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_erasures WHERE id = $1 AND retention.memory_found_again(id)`,
			erasure))
	})

	t.Run("a hold on the character of a reopened request: no memory endpoint is called", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		request, _ := foundAgain(t, b)
		b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('c1', 'litigation')`)
		before := b.memoryCalls()
		run, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, before[convaitest.EndpointMemoryDeleteAll], b.memoryCalls()[convaitest.EndpointMemoryDeleteAll], "held: not erased")
		require.NotEmpty(t, b.fake.Memories("c1", "u1"))
		require.NotNil(t, run.Erasure.EndUsers)
		require.NotEmpty(t, run.Erasure.EndUsers.Blocked, "the run says the hold blocked it")
		require.True(t, reopened(t, b, request), "still to erase once the hold is released")
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.end_user_memory WHERE request_id = $1 AND blocked_by IS NOT NULL`, request))
	})

	t.Run("a second erasure that ends pending is asked again by the next run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		request, _ := foundAgain(t, b)
		b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = true })
		run, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{request}, run.Erasure.EndUsers.Reopened)
		require.Equal(t, "pending", b.memoryStatus(t, request, "c1"))
		require.True(t, reopened(t, b, request), "a pending attempt does not stand for an erasure")

		b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = false })
		run, err = b.run(t, memoryConfig())
		require.NoError(t, err)
		require.Equal(t, []int64{request}, run.Erasure.EndUsers.Reopened)
		require.Empty(t, b.fake.Memories("c1", "u1"))
		require.Equal(t, "erased", b.memoryStatus(t, request, "c1"))
		require.False(t, reopened(t, b, request))
		require.Equal(t, []string{"erased pending erased"}, b.strings(t, `
			SELECT string_agg(status, ' ' ORDER BY id) FROM retention.memory_erasures WHERE request_id = $1 AND character_id = 'c1'`, request))
	})
}

// verifyMetrics runs a verification with the metrics `retention verify` pushes, and returns
// its summary and the value of each series of the re-check counter and the found-again gauge
// ("absent" when a family was not exported).
func (b *bundle) verifyMetrics(t *testing.T) (*job.VerifySummary, map[string]string) {
	t.Helper()
	m := metrics.NewVerify(metrics.Config{})
	sum, err := job.Verify(context.Background(), b.store, b.send.(job.Lister), fastConfig(), m, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	families, err := m.Gatherer().Gather()
	require.NoError(t, err)
	got := map[string]string{"found_again": "absent"}
	for _, f := range families {
		switch f.GetName() {
		case "convai_retention_memory_rechecks_total":
			for _, s := range f.GetMetric() {
				got[s.GetLabel()[0].GetValue()] = strconv.FormatFloat(s.GetCounter().GetValue(), 'f', -1, 64)
			}
		case "convai_retention_memories_found_again":
			got["found_again"] = strconv.FormatFloat(f.GetMetric()[0].GetGauge().GetValue(), 'f', -1, 64)
		}
	}
	return sum, got
}

// TestVerifyMetricsOfMemoriesFoundAgain: verify counts its re-checks by result, and the gauge of
// memories found again reads retention.end_user_memory at the end: it counts a memory found
// again until an erasure of it stands, through a second erasure that is still pending.
func TestVerifyMetricsOfMemoriesFoundAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	request, _ := b.erasedEndUser(t)

	sum, got := b.verifyMetrics(t)
	require.Equal(t, map[string]string{"gone": "1", "found": "0", "not_checked": "0", "found_again": "0"}, got)
	require.Zero(t, sum.MemoryLeft.MemoriesFoundAgain)

	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-back"})
	sum, got = b.verifyMetrics(t)
	require.Equal(t, map[string]string{"gone": "0", "found": "1", "not_checked": "0", "found_again": "1"}, got,
		"read after the re-checks: the one this verification found counts")
	require.EqualValues(t, 1, sum.MemoryLeft.MemoriesFoundAgain)
	require.Equal(t, "found_again", b.memoryStatus(t, request, "c1"))

	// The run's second erasure ends pending: nothing says erased, so nothing is re-checked, and
	// the memory is still there and counted.
	b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = true })
	_, err := b.run(t, memoryConfig())
	require.NoError(t, err)
	require.Equal(t, "pending", b.memoryStatus(t, request, "c1"))
	sum, got = b.verifyMetrics(t)
	require.Nil(t, sum.MemoryRechecks)
	require.Equal(t, map[string]string{"gone": "0", "found": "0", "not_checked": "0", "found_again": "1"}, got)

	// Erased again, and re-checked gone: no memory found again is left.
	b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = false })
	_, err = b.run(t, memoryConfig())
	require.NoError(t, err)
	require.Empty(t, b.fake.Memories("c1", "u1"))
	sum, got = b.verifyMetrics(t)
	require.Equal(t, map[string]string{"gone": "1", "found": "0", "not_checked": "0", "found_again": "0"}, got)
	require.Zero(t, sum.MemoryLeft.MemoriesFoundAgain)

	// A re-check that cannot list is counted as such, and does not change what was found.
	b.fake.Update(func(o *convaitest.Options) { o.NoMemory = true })
	_, got = b.verifyMetrics(t)
	require.Equal(t, map[string]string{"gone": "0", "found": "0", "not_checked": "1", "found_again": "0"}, got)
}
