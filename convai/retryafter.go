package convai

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter is the longest wait ParseRetryAfter returns; longer values are clamped to it.
const MaxRetryAfter = time.Hour

// maxDeltaSeconds is the largest delta-seconds that still fits a time.Duration.
const maxDeltaSeconds = int64(1<<63-1) / int64(time.Second)

// ParseRetryAfter parses the value of a Retry-After header: either delta-seconds (a non-negative
// integer of ASCII digits) or an HTTP-date, which is measured from now. A date in the past gives
// 0, true. The result is clamped to MaxRetryAfter. It returns 0, false for an empty value, a
// negative, fractional or signed number, a number too large for a time.Duration, and anything
// else it cannot parse.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > maxDeltaSeconds {
			return 0, false
		}
		return min(time.Duration(n)*time.Second, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), MaxRetryAfter), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
