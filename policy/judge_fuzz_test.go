package policy_test

import (
	"fmt"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy"
)

// FuzzJudge builds a rule set from fuzzed policies and holds and judges a fuzzed record. Judge
// never panics, and its verdict agrees with the rules stated one by one: a session is eligible
// exactly when it is well-formed, its character's policy deletes, it has expired under that
// policy and no hold protects it; held is said only of an expired session a hold protects;
// malformed is said of every record Check refuses; nothing eligible is past the horizon.
func FuzzJudge(f *testing.F) {
	f.Add("c", "s", int64(100), "c", int64(50), int64(200), uint8(0b1111), "c", "s")
	f.Add("c", "s", int64(100), "C", int64(50), int64(200), uint8(0b1101), "x", "")
	f.Add("bot", "s", int64(3600e9), "bot ", int64(1), int64(-1), uint8(0b111111), "bot", "")
	f.Add("c", "s", int64(0), "c", int64(1), int64(1), uint8(0b1111), "", "")
	f.Add("", "s", int64(5), "", int64(1), int64(1), uint8(0b1100), "c", "s")
	f.Add("c", "s\xff", int64(5), "c", int64(1), int64(1), uint8(0b1111), "c", "s\xff")
	f.Add("c", "s", int64(-5), "c", int64(-10), int64(10), uint8(0b0011), "c", "s")
	f.Add("c", "s", int64(10), "c", int64(10), int64(10), uint8(0b1011), "c", "s")
	f.Fuzz(func(t *testing.T, char, sess string, ageNanos int64, ownChar string, ownAge, defAge int64,
		flags uint8, holdChar, holdSess string) {
		cutoff := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
		rec := policy.Record{CharacterID: char, SessionID: sess}
		if ageNanos != 0 {
			rec.LastActive = cutoff.Add(-time.Duration(ageNanos))
		}
		var policies []policy.Policy
		if flags&1 != 0 {
			policies = append(policies, policy.Policy{ID: 1, CharacterID: ownChar, MaxAge: "own",
				Enabled: flags&2 != 0, Threshold: cutoff.Add(-time.Duration(ownAge))})
		}
		if flags&4 != 0 {
			policies = append(policies, policy.Policy{ID: 2, MaxAge: "default",
				Enabled: flags&8 != 0, Threshold: cutoff.Add(-time.Duration(defAge))})
		}
		var holds []policy.Hold
		if flags&16 != 0 {
			h := policy.Hold{CharacterID: holdChar}
			if flags&32 == 0 {
				h.SessionID = holdSess
			}
			holds = append(holds, h)
		}
		set, err := policy.NewSet(policies, holds)
		if err != nil {
			require.Contains(t, err.Error(), "both the default policy", "only two defaults are refused: %v", err)
			require.Empty(t, ownChar)
			return
		}

		v := set.Judge(rec)
		d := set.Decide(char)
		wellFormed := policy.Check(rec) == policy.SkipNone
		held := d.Reason == policy.ReasonHeld || set.SessionHeld(char, sess)
		expired := d.Policy.Enabled && !rec.LastActive.After(d.Policy.Threshold)

		require.False(t, v.Eligible && v.Skip != policy.SkipNone, "eligible and skipped at once: %+v", v)
		if !wellFormed {
			require.Equal(t, policy.Skip(policy.SkipMalformed), v.Skip)
			require.False(t, v.Eligible)
			return
		}
		require.NotEqual(t, policy.Skip(policy.SkipMalformed), v.Skip)
		require.Equal(t, d, v.Decision)
		require.Equal(t, d.Delete && expired && !held, v.Eligible,
			"decision %+v, expired %v, held %v, verdict %+v", d, expired, held, v)
		require.Equal(t, expired && held, v.Skip == policy.SkipHeld, "decision %+v, verdict %+v", d, v)
		if v.Eligible {
			require.True(t, d.Expired(rec.LastActive))
			horizon, ok := set.Horizon()
			require.True(t, ok)
			require.False(t, rec.LastActive.After(horizon), "eligible past the horizon")
		}

		// Precedence: a character's own row decides for it, whatever the default says.
		if flags&1 != 0 && ownChar == char && ownChar != "" {
			switch {
			case flags&2 == 0:
				require.False(t, d.Delete, "a disabled own policy never deletes")
				require.Contains(t, []policy.Reason{policy.ReasonDisabled, policy.ReasonHeld}, d.Reason)
			case d.Reason != policy.ReasonHeld:
				require.Equal(t, policy.ReasonOwnPolicy, d.Reason)
				require.EqualValues(t, 1, d.Policy.ID)
			}
		}
		if d.Reason == policy.ReasonDefaultPolicy || (d.Reason == policy.ReasonHeld && d.Policy.ID == 2) {
			require.False(t, flags&1 != 0 && ownChar == char, "the default applied to a character with its own row")
		}
	})
}

// TestCheckRefusesControlCharacters: an ID with any control character is malformed and never
// sent, as the README says: C0 (U+0000–U+001F), DEL, and C1 (U+0080–U+009F, e.g. U+0085 NEXT
// LINE), at the start, in the middle and at the end.
func TestCheckRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var sent []string
	for r := rune(0); r <= 0x10ffff; r++ {
		if !unicode.IsControl(r) || r == 0 { // PostgreSQL text cannot hold NUL; Check refuses it anyway
			continue
		}
		for _, id := range []string{string(r) + "s", "s" + string(r) + "s", "s" + string(r)} {
			if policy.Check(policy.Record{CharacterID: "c", SessionID: id, LastActive: at}) != policy.SkipMalformed ||
				policy.Check(policy.Record{CharacterID: id, SessionID: "s", LastActive: at}) != policy.SkipMalformed {
				sent = append(sent, fmt.Sprintf("%U", r))
				break
			}
		}
	}
	require.Empty(t, sent, "IDs with these control characters would be sent")
}
