package convai_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
)

// TestAgainstFake runs the client against the stand-in endpoint, fault by fault.
func TestAgainstFake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       convaitest.Options
		class      convai.Class
		code       int
		retryAfter time.Duration
		deleted    int
	}{
		{"deleted", convaitest.Options{}, convai.Confirmed, 200, 0, 2},
		{"wrong key", convaitest.Options{APIKey: "other"}, convai.AuthRejected, 401, 0, 0},
		{"rejected ID", convaitest.Options{RejectIDs: []string{"s2"}}, convai.Permanent, 400, 0, 0},
		{"too many IDs", convaitest.Options{MaxIDs: 1}, convai.Permanent, 400, 0, 0},
		{"failure", convaitest.Options{FailRate: 1}, convai.Retryable, 500, 0, 0},
		{"rate limited", convaitest.Options{RateLimitRate: 1, RetryAfter: 2 * time.Second}, convai.Retryable, 429, 2 * time.Second, 0},
		{"dropped", convaitest.Options{DropRate: 1}, convai.Retryable, 0, 0, 0},
		{"unconfirmed", convaitest.Options{UnconfirmedRate: 1}, convai.Retryable, 200, 0, 0},
		{"answer lost after deleting", convaitest.Options{LostAnswerRate: 1}, convai.Retryable, 0, 0, 2},
		{"hang ended by the server", convaitest.Options{HangRate: 1, HangFor: time.Millisecond}, convai.Retryable, 504, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.APIKey = cmpOr(tt.opts.APIKey, apiKey)
			fake := convaitest.New(tt.opts)
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			t.Cleanup(fake.Close)
			c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey})
			require.NoError(t, err)
			t.Cleanup(c.CloseIdleConnections)

			res := c.Delete(context.Background(), "char", []string{"s1", "s2"})
			requireClean(t, res)
			require.Equal(t, tt.class, res.Class, res.Detail)
			require.Equal(t, tt.code, res.StatusCode)
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			require.Equal(t, tt.deleted, fake.DeletedCount())
			require.Len(t, fake.Requests(), 1, "one request, no retries")
		})
	}
}

func TestAgainstFakeHangWithTimeout(t *testing.T) {
	t.Parallel()
	fake := convaitest.New(convaitest.Options{APIKey: apiKey, HangRate: 1})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := c.Delete(ctx, "char", []string{"s1"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.Zero(t, fake.DeletedCount())
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
