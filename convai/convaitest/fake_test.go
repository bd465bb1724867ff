package convaitest_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/syncbuf"
)

const key = "test-key-5f2c"

type bundle struct {
	fake *convaitest.Fake
	srv  *httptest.Server
	hc   *http.Client
}

func setup(t *testing.T, opts convaitest.Options) *bundle {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = key
	}
	fake := convaitest.New(opts)
	srv := httptest.NewServer(fake)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		fake.Close()
		srv.Close()
	})
	return &bundle{fake: fake, srv: srv, hc: hc}
}

type reply struct {
	status int
	header http.Header
	body   string
}

// do sends a request and returns the reply, or the transport error.
func (b *bundle) do(ctx context.Context, method, path, apiKey, body string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if apiKey != "" {
		req.Header.Set("CONVAI-API-KEY", apiKey)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(data)}, nil
}

// post sends a well-formed delete with the right key and requires an answer.
func (b *bundle) post(t *testing.T, charID string, ids ...string) reply {
	t.Helper()
	r, err := b.do(context.Background(), http.MethodPost, convaitest.Path, key, deleteBody(t, charID, ids))
	require.NoError(t, err)
	return r
}

func deleteBody(t *testing.T, charID string, ids []string) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"charID": charID, "sessionIDs": ids})
	require.NoError(t, err)
	return string(data)
}

func TestKeyChecking(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	body := deleteBody(t, "c1", []string{"s1"})

	for _, k := range []string{"", "wrong", key + "x", key[1:], strings.ToUpper(key)} {
		r, err := b.do(context.Background(), http.MethodPost, convaitest.Path, k, body)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, r.status, "key %q", k)
		require.JSONEq(t, convaitest.InvalidKey, r.body)
	}
	require.Zero(t, b.fake.DeletedCount())

	r := b.post(t, "c1", "s1")
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, convaitest.Confirmation, r.body)

	b.fake.SetAPIKey("rotated")
	require.Equal(t, http.StatusUnauthorized, b.post(t, "c1", "s2").status)
	require.Equal(t, map[string][]string{"c1": {"s1"}}, b.fake.Deleted())
	require.Equal(t, 5+1, b.fake.Stats().Outcomes[convaitest.OutcomeUnauthorized])
}

func TestEmptyKeyAcceptsNothing(t *testing.T) {
	t.Parallel()
	fake := convaitest.New(convaitest.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL+convaitest.Path, strings.NewReader(`{"charID":"c","sessionIDs":["s"]}`))
	require.NoError(t, err)
	req.Header.Set("CONVAI-API-KEY", "")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	srv.Client().CloseIdleConnections()
}

func TestRouting(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})

	r, err := b.do(context.Background(), http.MethodGet, convaitest.Path, key, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, http.MethodPost, r.header.Get("Allow"))

	r, err = b.do(context.Background(), http.MethodPost, "/character/chatHistory/deleted", key, deleteBody(t, "c", []string{"s"}))
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Zero(t, b.fake.DeletedCount())
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})

	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not json", `charID=c&sessionIDs=s`},
		{"truncated", `{"charID":"c","sessionIDs":["s"]`},
		{"trailing garbage", `{"charID":"c","sessionIDs":["s"]} x`},
		{"array", `[{"charID":"c","sessionIDs":["s"]}]`},
		{"missing charID", `{"sessionIDs":["s"]}`},
		{"empty charID", `{"charID":"","sessionIDs":["s"]}`},
		{"charID not a string", `{"charID":7,"sessionIDs":["s"]}`},
		{"missing sessionIDs", `{"charID":"c"}`},
		{"null sessionIDs", `{"charID":"c","sessionIDs":null}`},
		{"empty sessionIDs", `{"charID":"c","sessionIDs":[]}`},
		{"non-string ID", `{"charID":"c","sessionIDs":[1]}`},
		{"empty ID", `{"charID":"c","sessionIDs":["s",""]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := b.do(context.Background(), http.MethodPost, convaitest.Path, key, tt.body)
			require.NoError(t, err)
			require.Equal(t, http.StatusBadRequest, r.status)
			var e map[string]string
			require.NoError(t, json.Unmarshal([]byte(r.body), &e))
			require.NotEmpty(t, e["ERROR"])
		})
	}
	t.Cleanup(func() { require.Zero(t, b.fake.DeletedCount()) })
}

func TestRemembersDeletions(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})

	weird := "q\"uo\\te \u00e9 \u2028 \x01"
	require.Equal(t, http.StatusOK, b.post(t, "c1", "s3", "s1", weird).status)
	require.Equal(t, http.StatusOK, b.post(t, "c2", "s1").status)
	// Idempotent: deleting again succeeds and changes nothing.
	r := b.post(t, "c1", "s1", "s1")
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, convaitest.Confirmation, r.body)

	got := b.fake.Deleted()
	require.Equal(t, map[string][]string{"c1": {"q\"uo\\te \u00e9 \u2028 \x01", "s1", "s3"}, "c2": {"s1"}}, got)
	require.Equal(t, 4, b.fake.DeletedCount())
	require.True(t, b.fake.IsDeleted("c1", weird))
	require.False(t, b.fake.IsDeleted("c2", "s3"))

	// Deleted returns a copy.
	got["c1"][0] = "changed"
	delete(got, "c2")
	require.Len(t, b.fake.Deleted(), 2)
	require.Equal(t, "q\"uo\\te \u00e9 \u2028 \x01", b.fake.Deleted()["c1"][0])

	st := b.fake.Stats()
	require.Equal(t, 3, st.Requests)
	require.Equal(t, 3, st.Outcomes[convaitest.OutcomeDeleted])
	require.Equal(t, 4, st.Deleted)
}

func TestRejectIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{RejectIDs: []string{"bad"}})

	r := b.post(t, "c", "ok1", "bad", "ok2")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.body, `"ERROR"`)
	require.Zero(t, b.fake.DeletedCount(), "a refused request deletes nothing")
	require.Equal(t, http.StatusOK, b.post(t, "c", "ok1", "ok2").status)

	b.fake.SetRejectIDs("ok1")
	require.Equal(t, http.StatusBadRequest, b.post(t, "c", "ok1").status)
	require.Equal(t, http.StatusOK, b.post(t, "c", "bad").status)
	require.Equal(t, map[string][]string{"c": {"bad", "ok1", "ok2"}}, b.fake.Deleted())
	require.Equal(t, 2, b.fake.Stats().Outcomes[convaitest.OutcomeRejected])
}

func TestMaxIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{MaxIDs: 2})

	require.Equal(t, http.StatusBadRequest, b.post(t, "c", "a", "b", "c").status)
	require.Zero(t, b.fake.DeletedCount())
	require.Equal(t, http.StatusOK, b.post(t, "c", "a", "b").status)
	require.Equal(t, 2, b.fake.DeletedCount())
}

func TestFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{FailRate: 1, RetryAfter: 1500 * time.Millisecond})

	var statuses []int
	for range 3 {
		r := b.post(t, "c", "s")
		statuses = append(statuses, r.status)
		if r.status == http.StatusServiceUnavailable {
			require.Equal(t, "2", r.header.Get("Retry-After"))
		}
	}
	require.Equal(t, []int{500, 502, 503}, statuses)
	require.Zero(t, b.fake.DeletedCount())
	require.Equal(t, 3, b.fake.Stats().Outcomes[convaitest.OutcomeFailed])
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{RateLimitRate: 1})

	r := b.post(t, "c", "s")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "1", r.header.Get("Retry-After"), "default 1s")
	require.Zero(t, b.fake.DeletedCount())

	b.fake.Update(func(o *convaitest.Options) { o.RetryAfter = 3 * time.Second })
	require.Equal(t, "3", b.post(t, "c", "s").header.Get("Retry-After"))
	b.fake.Update(func(o *convaitest.Options) { o.RateLimitRate = 0 })
	require.Equal(t, http.StatusOK, b.post(t, "c", "s").status)
}

func TestHangUntilClientGoesAway(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{HangRate: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.do(ctx, http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.Eventually(t, func() bool { return b.fake.Stats().Outcomes[convaitest.OutcomeHung] == 1 },
		5*time.Second, 5*time.Millisecond)
	reqs := b.fake.Requests()
	require.Len(t, reqs, 1)
	require.Zero(t, reqs[0].Status)
	require.Zero(t, b.fake.DeletedCount())
}

func TestHangFor(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{HangRate: 1, HangFor: 10 * time.Millisecond})

	r := b.post(t, "c", "s")
	require.Equal(t, http.StatusGatewayTimeout, r.status)
	require.Zero(t, b.fake.DeletedCount())
}

func TestCloseReleasesHangs(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{HangRate: 1})

	done := make(chan reply, 1)
	go func() {
		r, _ := b.do(context.Background(), http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
		done <- r
	}()
	require.Eventually(t, func() bool { return b.fake.Stats().InFlight == 1 }, 5*time.Second, time.Millisecond)
	b.fake.Close()
	b.fake.Close() // twice is fine
	require.Equal(t, http.StatusServiceUnavailable, (<-done).status)
	require.Equal(t, http.StatusServiceUnavailable, b.post(t, "c", "s").status, "later hangs return at once")
}

func TestDrop(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{DropRate: 1})

	_, err := b.do(context.Background(), http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
	require.ErrorIs(t, err, io.EOF)
	require.Zero(t, b.fake.DeletedCount())
	require.Equal(t, []convaitest.Request{{
		Time: b.fake.Requests()[0].Time, Endpoint: convaitest.EndpointDelete, CharID: "c", SessionIDs: []string{"s"}, Outcome: convaitest.OutcomeDropped,
	}}, b.fake.Requests())
}

func TestLostAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{LostAnswerRate: 1})

	_, err := b.do(context.Background(), http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
	require.Error(t, err)
	require.Equal(t, map[string][]string{"c": {"s"}}, b.fake.Deleted(), "deleted although the answer was lost")
	require.Equal(t, 1, b.fake.Stats().Outcomes[convaitest.OutcomeLostAnswer])
}

func TestUnconfirmed(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{UnconfirmedRate: 1})

	seen := map[string]bool{}
	for range 6 {
		r := b.post(t, "c", "s")
		require.Equal(t, http.StatusOK, r.status)
		var v struct{ Status string }
		if json.Unmarshal([]byte(r.body), &v) == nil {
			require.NotEqual(t, "SUCCESSFULLY DELETED", strings.ToUpper(strings.TrimSpace(v.Status)), r.body)
		}
		seen[r.body] = true
	}
	require.Len(t, seen, 6, "every variant is used")
	require.Zero(t, b.fake.DeletedCount())
}

func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	outcomes := func(seed int64) []convaitest.Outcome {
		b := setup(t, convaitest.Options{Seed: seed, FailRate: 0.3, RateLimitRate: 0.3, UnconfirmedRate: 0.2})
		var out []convaitest.Outcome
		for range 40 {
			b.post(t, "c", "s")
		}
		for _, r := range b.fake.Requests() {
			out = append(out, r.Outcome)
		}
		return out
	}
	a := outcomes(7)
	require.Equal(t, a, outcomes(7))
	require.NotEqual(t, a, outcomes(8))
	kinds := map[convaitest.Outcome]bool{}
	for _, o := range a {
		kinds[o] = true
	}
	require.Len(t, kinds, 4, "all four answers show up in 40 draws: %v", kinds)
}

func TestRatesOutOfRangeAreClamped(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{FailRate: -3, RateLimitRate: 7})
	require.Equal(t, http.StatusTooManyRequests, b.post(t, "c", "s").status)
}

func TestConcurrencyTracking(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{HangRate: 1})
	const n = 5

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _ = b.do(ctx, http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
		})
	}
	require.Eventually(t, func() bool { return b.fake.Stats().InFlight == n }, 5*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return b.fake.Stats().InFlight == 0 }, 5*time.Second, time.Millisecond)

	st := b.fake.Stats()
	require.Equal(t, n, st.MaxInFlight)
	require.Equal(t, n, st.Requests)
	require.Equal(t, n, st.Outcomes[convaitest.OutcomeHung])
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	tick := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return base.Add(time.Duration(tick) * time.Second)
	}
	b := setup(t, convaitest.Options{Now: now, RejectIDs: []string{"x"}})

	b.post(t, "c1", "a", "b")
	b.post(t, "c2", "x")
	_, err := b.do(context.Background(), http.MethodPost, convaitest.Path, "nope", deleteBody(t, "c3", []string{"s"}))
	require.NoError(t, err)

	reqs := b.fake.Requests()
	require.Len(t, reqs, 3)
	require.Equal(t, convaitest.Request{Time: reqs[0].Time, Endpoint: convaitest.EndpointDelete, CharID: "c1", SessionIDs: []string{"a", "b"}, Status: 200, Outcome: convaitest.OutcomeDeleted}, reqs[0])
	require.Equal(t, convaitest.Request{Time: reqs[1].Time, Endpoint: convaitest.EndpointDelete, CharID: "c2", SessionIDs: []string{"x"}, Status: 400, Outcome: convaitest.OutcomeRejected}, reqs[1])
	require.Equal(t, convaitest.Request{Time: reqs[2].Time, Endpoint: convaitest.EndpointDelete, Status: 401, Outcome: convaitest.OutcomeUnauthorized}, reqs[2], "the body is not read without the key")
	require.True(t, reqs[0].Time.After(base))
	require.True(t, reqs[1].Time.After(reqs[0].Time))
	require.True(t, reqs[2].Time.After(reqs[1].Time))

	// The log is a copy.
	reqs[0].SessionIDs[0] = "changed"
	require.Equal(t, "a", b.fake.Requests()[0].SessionIDs[0])
}

func TestLatency(t *testing.T) {
	t.Parallel()
	const latency = 30 * time.Millisecond
	b := setup(t, convaitest.Options{Latency: latency})

	start := time.Now()
	require.Equal(t, http.StatusOK, b.post(t, "c", "s").status)
	require.GreaterOrEqual(t, time.Since(start), latency)
}

func TestLatencyCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{Latency: time.Hour})

	// Cancel once the fake is handling the request (a timer could fire before it arrives on a
	// busy machine, and the fake would never see it).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for b.fake.Stats().InFlight == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := b.do(ctx, http.MethodPost, convaitest.Path, key, deleteBody(t, "c", []string{"s"}))
	require.Error(t, err)
	require.Eventually(t, func() bool { return b.fake.Stats().Outcomes[convaitest.OutcomeCanceled] == 1 },
		5*time.Second, time.Millisecond)
	require.Zero(t, b.fake.DeletedCount())
}

func TestLoggerNeverLogsKey(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := setup(t, convaitest.Options{Logger: logger})

	b.post(t, "c", "s")
	_, err := b.do(context.Background(), http.MethodPost, convaitest.Path, "wrong-"+key, deleteBody(t, "c", []string{"s"}))
	require.NoError(t, err)

	out := buf.String()
	require.Contains(t, out, "outcome=deleted")
	require.Contains(t, out, "outcome=unauthorized")
	require.NotContains(t, out, key)
}
