package convai_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "120", 120 * time.Second, true},
		{"zero", "0", 0, true},
		{"spaces around", " 5 ", 5 * time.Second, true},
		{"leading zeros", "007", 7 * time.Second, true},
		{"clamped to an hour", "3601", time.Hour, true},
		{"large but fits a duration", "9223372036", time.Hour, true},
		{"too large for a duration", "9223372037", 0, false},
		{"overflows int64", "99999999999999999999", 0, false},
		{"negative", "-1", 0, false},
		{"plus sign", "+5", 0, false},
		{"fractional", "1.5", 0, false},
		{"unit", "5s", 0, false},
		{"hex", "0x10", 0, false},
		{"empty", "", 0, false},
		{"blank", "   ", 0, false},
		{"garbage", "soon", 0, false},
		{"date in 90s", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"RFC 850 date", now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
		{"asctime date", now.Add(10 * time.Second).Format(time.ANSIC), 10 * time.Second, true},
		{"date now", now.Format(http.TimeFormat), 0, true},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"date far ahead is clamped", now.AddDate(1, 0, 0).Format(http.TimeFormat), time.Hour, true},
		{"date with a zone other than GMT", "Wed, 04 Mar 2026 05:07:07 +0100", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := convai.ParseRetryAfter(tt.in, now)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "3600", "-1", "1.5", "99999999999999999999", "",
		"Wed, 21 Oct 2015 07:28:00 GMT", now.Add(time.Minute).Format(http.TimeFormat), "\x00"} {
		f.Add(s, now.Unix())
	}
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		at := time.Unix(unix, 0)
		d, ok := convai.ParseRetryAfter(v, at)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, convai.MaxRetryAfter)
		if !ok {
			require.Zero(t, d)
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n <= 3600 && v[0] != '+' {
			require.True(t, ok)
			require.Equal(t, time.Duration(n)*time.Second, d)
		}
	})
}
