package convaitest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
)

type listed struct {
	SessionID string `json:"sessionID"`
	Date      string `json:"date"`
	Time      string `json:"time"`
	Memory    *bool  `json:"is_added_to_memory"`
}

func (b *bundle) list(t *testing.T, body string) (reply, []listed) {
	t.Helper()
	r, err := b.do(context.Background(), http.MethodPost, convaitest.ListPath, key, body)
	require.NoError(t, err)
	var out []listed
	if r.status == http.StatusOK {
		require.NoError(t, json.Unmarshal([]byte(r.body), &out), r.body)
	}
	return r, out
}

func TestListServesState(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	b.fake.AddSession("c1", "old", t0, t0.Add(time.Hour))
	b.fake.AddSession("c1", "new", t0.Add(48*time.Hour))
	b.fake.AddSession("c2", "other", t0)

	r, got := b.list(t, `{"charID": "c1", "limit": "-1"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, got, 2)
	require.Equal(t, "new", got[0].SessionID, "newest start first")
	require.Equal(t, "06-03-2026", got[0].Date)
	require.Equal(t, "old", got[1].SessionID)
	require.Equal(t, "04-03-2026", got[1].Date)
	require.Equal(t, "05:06:07", got[1].Time, "the start is the first interaction")
	require.NotNil(t, got[1].Memory)

	_, got = b.list(t, `{"charID": "c1", "limit": "1"}`)
	require.Len(t, got, 1)
	_, got = b.list(t, `{"charID": "nobody", "limit": "-1"}`)
	require.Empty(t, got)
	for _, bad := range []string{`{"charID": "c1", "limit": "0"}`, `{"charID": "c1", "limit": -1}`, `{"limit": "-1"}`, `[`} {
		r, _ := b.list(t, bad)
		require.Equal(t, http.StatusBadRequest, r.status, bad)
	}

	// A confirmed delete removes the session from the list; adding it again brings it back.
	require.Equal(t, http.StatusOK, b.post(t, "c1", "old").status)
	_, got = b.list(t, `{"charID": "c1", "limit": "-1"}`)
	require.Len(t, got, 1)
	require.Equal(t, "new", got[0].SessionID)
	require.False(t, b.fake.HasSession("c1", "old"))
	b.fake.AddSession("c1", "old", t0)
	require.Equal(t, []string{"new", "old"}, b.fake.Sessions("c1"))
}

func TestListAndDetailsFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{FailRate: 1})
	b.fake.AddSession("c", "s", time.Now())
	r, _ := b.list(t, `{"charID": "c", "limit": "-1"}`)
	require.Equal(t, http.StatusInternalServerError, r.status)
	d, err := b.do(context.Background(), http.MethodPost, convaitest.DetailsPath, key, `{"charID": "c", "sessionID": "s"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, d.status, "the fault turns go on across endpoints")

	b.fake.Update(func(o *convaitest.Options) { o.FailRate, o.RateLimitRate = 0, 1 })
	r, _ = b.list(t, `{"charID": "c", "limit": "-1"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "1", r.header.Get("Retry-After"))

	b.fake.Update(func(o *convaitest.Options) { o.RateLimitRate, o.UnconfirmedRate = 0, 1 })
	r, err = b.do(context.Background(), http.MethodPost, convaitest.ListPath, key, `{"charID": "c", "limit": "-1"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.status)
	var v []listed
	require.Error(t, json.Unmarshal([]byte(r.body), &v), "not a session list: %s", r.body)

	b.fake.Update(func(o *convaitest.Options) { o.UnconfirmedRate, o.DropRate = 0, 1 })
	_, err = b.do(context.Background(), http.MethodPost, convaitest.ListPath, key, `{"charID": "c", "limit": "-1"}`)
	require.Error(t, err)

	b.fake.Update(func(o *convaitest.Options) { o.DropRate = 0 })
	r, err = b.do(context.Background(), http.MethodPost, convaitest.ListPath, "wrong", `{"charID": "c", "limit": "-1"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.True(t, b.fake.HasSession("c", "s"), "no fault deletes anything")
}

func TestDetails(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	b.fake.AddSession("c", "s", t0.Add(time.Hour), t0)
	r, err := b.do(context.Background(), http.MethodPost, convaitest.DetailsPath, key, `{"charID": "c", "sessionID": "s"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.status)
	var got []map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	require.Len(t, got, 2)
	require.Equal(t, "2026-03-04 05:06:07.123456", got[0]["timestamp"], "no zone, UTC, oldest first")
	require.Equal(t, "2026-03-04 06:06:07.123456", got[1]["timestamp"])

	r, err = b.do(context.Background(), http.MethodPost, convaitest.DetailsPath, key, `{"charID": "c", "sessionID": "gone"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, r.status)
	r, err = b.do(context.Background(), http.MethodPost, convaitest.DetailsPath, key, `{"charID": "c"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, r.status)
	reqs := b.fake.Requests()
	require.Equal(t, convaitest.EndpointDetails, reqs[0].Endpoint)
	require.Equal(t, []string{"s"}, reqs[0].SessionIDs)
}

func TestRefuseUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{RefuseUnknown: true})
	b.fake.AddSession("c", "a", time.Now())
	b.fake.AddSession("c", "b", time.Now())
	require.Equal(t, http.StatusOK, b.post(t, "c", "a").status)
	r := b.post(t, "c", "a", "b")
	require.Equal(t, http.StatusNotFound, r.status, "a repeated delete is refused")
	require.Contains(t, r.body, `"ERROR"`)
	require.True(t, b.fake.HasSession("c", "b"), "a refused request deletes nothing")
	require.Equal(t, http.StatusNotFound, b.post(t, "c", "never").status)
	require.Equal(t, http.StatusOK, b.post(t, "c", "b").status)
	require.Equal(t, 2, b.fake.Stats().Outcomes[convaitest.OutcomeUnknown])

	// Without the mode, deleting what the Fake does not hold is confirmed, as before.
	b.fake.Update(func(o *convaitest.Options) { o.RefuseUnknown = false })
	require.Equal(t, http.StatusOK, b.post(t, "c", "a").status)
}
