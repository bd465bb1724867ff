package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
)

// heavy reports whether the long variants of the fault tests run: RETENTION_HEAVY_TESTS=1, and
// not -short. The default variants check the same properties with fewer rounds and less data.
func heavy() bool { return os.Getenv("RETENTION_HEAVY_TESTS") == "1" && !testing.Short() }

// testSeed returns the seed of a randomised test, RETENTION_TEST_SEED if set, and logs it so a
// failing sequence can be replayed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("RETENTION_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "RETENTION_TEST_SEED")
		t.Logf("seed %d (from RETENTION_TEST_SEED)", v)
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with RETENTION_TEST_SEED=%d)", v, v)
	return v
}

// waitBackendsGone waits until the program has no session left in the database. A killed
// process's sessions end when the server notices, and one of them holds the run lock; a
// statement sent just before the kill may still commit meanwhile.
func (b *bundle) waitBackendsGone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for b.countNow(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'convai-retention'`) != 0 {
		require.True(t, time.Now().Before(deadline), "the killed process's database sessions stay")
		time.Sleep(10 * time.Millisecond)
	}
}

// sleepOrEnd sleeps d, or less if the process ends first.
func (p *proc) sleepOrEnd(d time.Duration) {
	select {
	case <-time.After(d):
	case <-p.done:
	}
}

// confirmedAtFake returns "character/session" of every ID a request confirmed by the fake carried.
func (b *bundle) confirmedAtFake() map[string]bool {
	out := map[string]bool{}
	for _, r := range b.fake.Requests() {
		if r.Outcome == convaitest.OutcomeDeleted {
			for _, id := range r.SessionIDs {
				out[r.CharID+"/"+id] = true
			}
		}
	}
	return out
}

// requireNoFalseRecord checks what holds after any fault: every session recorded deleted was
// confirmed by the API, and none is recorded deleted twice. It returns the deletions the API
// confirmed that are not recorded (a lost answer or a lost commit: the next run sends them again).
func (b *bundle) requireNoFalseRecord(t *testing.T) (unrecorded []string) {
	t.Helper()
	confirmed := b.confirmedAtFake()
	recorded := map[string]bool{}
	for _, k := range b.recordedDeleted(t) {
		require.True(t, confirmed[k], "%s recorded deleted without a confirmation", k)
		require.False(t, recorded[k], "%s recorded deleted twice", k)
		recorded[k] = true
	}
	for _, k := range b.fakeDeleted() {
		if !recorded[k] {
			unrecorded = append(unrecorded, k)
		}
	}
	return unrecorded
}

// requireAllDeletedOnce checks the end of a fault test, after a run that finished: every
// eligible session recorded deleted exactly once, each confirmed by the API, nothing pending
// and no run left running.
func (b *bundle) requireAllDeletedOnce(t *testing.T, eligible []string) {
	t.Helper()
	require.Equal(t, eligible, b.recordedDeleted(t), "every eligible session recorded deleted exactly once")
	confirmed := b.confirmedAtFake()
	for _, k := range eligible {
		require.True(t, confirmed[k], "%s recorded deleted without a confirmation", k)
	}
	require.Zero(t, b.count(t, pendingSQL))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))
}

// TestKilledAtRandomMoments kills the job with SIGKILL at seeded random moments (starting up,
// recovering the run killed before, selecting, sending, recording) while the API fails some
// requests and loses some answers, then lets a run finish. Every eligible session ends with
// exactly one deleted row, no other session was ever sent, and no run is left running.
func TestKilledAtRandomMoments(t *testing.T) {
	t.Parallel()
	kills, chars, perChar := 5, 8, 40
	if heavy() {
		kills, chars, perChar = 50, 30, 100
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 0x6b696c6c))
	b := setup(t)
	eligible := append(b.seedWorld(t), b.seedBulk(t, chars, perChar)...)
	sort.Strings(eligible)
	b.fake.Update(func(o *convaitest.Options) {
		o.Latency = 15 * time.Millisecond
		o.FailRate, o.DropRate, o.LostAnswerRate = 0.15, 0.05, 0.05
	})
	args := []string{"run", "--concurrency", "3", "--chunk-size", "4", "--max-attempts", "30", "--request-timeout", "5s"}

	midSend := 0
	for i := range kills {
		served := b.gate.served.Load()
		p := b.start(t, args...)
		var when string
		if rng.IntN(4) == 0 {
			// Anywhere from the start: connecting, taking the lock, recovering, selecting.
			d := time.Duration(rng.IntN(400)) * time.Millisecond
			p.sleepOrEnd(d)
			when = fmt.Sprintf("%v after start", d)
		} else {
			// While sending: some time after this process's first request.
			deadline := time.Now().Add(time.Minute)
			for b.gate.served.Load() == served && time.Now().Before(deadline) {
				p.sleepOrEnd(time.Millisecond)
			}
			d := time.Duration(rng.IntN(300)) * time.Millisecond
			p.sleepOrEnd(d)
			when = fmt.Sprintf("%v after its first request", d)
		}
		_ = p.cmd.Process.Kill()
		r := p.wait(t)
		if r.code == -1 {
			if b.gate.served.Load() > served {
				midSend++
			}
			t.Logf("kill %d: %s; %d recorded deleted so far", i+1, when, b.countNow(deletedSQL))
		} else {
			require.Contains(t, []int{exitcode.OK, exitcode.Partial}, r.code, "%s", r)
			t.Logf("kill %d: the run ended (exit %d) before the kill %s", i+1, r.code, when)
		}
		b.waitBackendsGone(t)

		// What holds after any crash: nothing recorded deleted that the fake did not confirm,
		// no session recorded deleted twice, at most the dead run left running.
		b.requireNoFalseRecord(t)
		require.LessOrEqual(t, b.countNow(`SELECT count(*) FROM retention.runs WHERE status = 'running'`), 1)
		require.True(t, subset(b.gate.requested(), eligible), "an ineligible session was sent")
	}
	t.Logf("%d of %d kills landed while sending", midSend, kills)

	r := b.start(t, args...).wait(t)
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	b.requireAllDeletedOnce(t, eligible)
	require.Equal(t, eligible, b.fakeDeleted())
	require.True(t, subset(b.gate.requested(), eligible), "nothing held, unexpired or disabled was ever sent")
	var last string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT status FROM retention.runs ORDER BY id DESC LIMIT 1`).Scan(&last))
	require.Equal(t, "succeeded", last)
	require.LessOrEqual(t, b.count(t, `SELECT count(*) FROM retention.runs`), kills+1,
		"one run row per process, for those that got as far as starting their run")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs WHERE status NOT IN ('interrupted', 'succeeded', 'partial')`),
		"every killed run was found dead and marked interrupted")
}
