package policy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/policy/policytest"
)

var (
	cutoff  = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	days30  = cutoff.AddDate(0, 0, -30)
	days7   = cutoff.AddDate(0, 0, -7)
	days365 = cutoff.AddDate(-1, 0, 0)
)

func TestDecide(t *testing.T) {
	t.Parallel()

	for _, tt := range policytest.DecideCases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.Want, tt.World.Set().Decide(tt.Character))
		})
	}
}

func TestNewSetRejects(t *testing.T) {
	t.Parallel()

	ok := policy.Policy{ID: 1, Enabled: true, Threshold: days30}
	tests := []struct {
		name     string
		policies []policy.Policy
		errPart  string
	}{
		{"two defaults", []policy.Policy{ok, {ID: 2, Threshold: days7}}, "both the default"},
		{"two rows for a character", []policy.Policy{{ID: 1, CharacterID: "a", Threshold: days7}, {ID: 2, CharacterID: "a", Threshold: days30}}, `both name character "a"`},
		{"no threshold", []policy.Policy{{ID: 9, CharacterID: "a"}}, "policy 9: no threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := policy.NewSet(tt.policies, nil)
			require.ErrorContains(t, err, tt.errPart)
		})
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()

	d := policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: policy.Policy{Enabled: true, Threshold: days30}}
	tests := []struct {
		name       string
		decision   policy.Decision
		lastActive time.Time
		want       bool
	}{
		{"older than threshold", d, days30.Add(-time.Hour), true},
		{"exactly at threshold expires", d, days30, true},
		{"a microsecond newer does not", d, days30.Add(time.Microsecond), false},
		{"recent", d, cutoff, false},
		{"in the future", d, cutoff.Add(time.Hour), false},
		{"no last activity never expires", d, time.Time{}, false},
		{"decision that does not delete", policy.Decision{Reason: policy.ReasonDisabled}, days365, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.decision.Expired(tt.lastActive))
		})
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()

	for _, tt := range policytest.JudgeCases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			v := tt.World.Set().Judge(tt.Record)
			require.Equal(t, tt.Eligible, v.Eligible)
			require.Equal(t, tt.Skip, v.Skip)
			if v.Eligible {
				require.True(t, v.Decision.Expired(tt.Record.LastActive))
			}
		})
	}
}

func TestSessionHeld(t *testing.T) {
	t.Parallel()

	s, err := policy.NewSet(nil, []policy.Hold{{CharacterID: "a", SessionID: "s1"}, {CharacterID: "b"}})
	require.NoError(t, err)
	require.True(t, s.SessionHeld("a", "s1"))
	require.False(t, s.SessionHeld("a", "s2"))
	require.False(t, s.SessionHeld("b", "s1"), "character holds are reported by Decide")
	require.Equal(t, policy.ReasonHeld, s.Decide("b").Reason)

	// Held: a hold on the character or on the session. AnyHeld: on the character or any session.
	require.True(t, s.Held("a", "s1"))
	require.False(t, s.Held("a", "s2"))
	require.True(t, s.Held("b", "anything"))
	require.True(t, s.AnyHeld("a"))
	require.True(t, s.AnyHeld("b"))
	require.False(t, s.AnyHeld("c"))
}

func TestHorizon(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		policies []policy.Policy
		want     time.Time
		ok       bool
	}{
		{"none", nil, time.Time{}, false},
		{"only disabled", []policy.Policy{{ID: 1, Threshold: days7}}, time.Time{}, false},
		{"latest enabled threshold", []policy.Policy{
			{ID: 1, Enabled: true, Threshold: days30},
			{ID: 2, CharacterID: "a", Enabled: true, Threshold: days365},
			{ID: 3, CharacterID: "b", Enabled: false, Threshold: days7},
		}, days30, true},
		{"short own policy", []policy.Policy{
			{ID: 1, Enabled: true, Threshold: days30},
			{ID: 2, CharacterID: "a", Enabled: true, Threshold: days7},
		}, days7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := policy.NewSet(tt.policies, nil)
			require.NoError(t, err)
			got, ok := s.Horizon()
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()

	for _, tt := range policytest.CheckCases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.Want, policy.Check(tt.Record))
		})
	}
}

func TestShard(t *testing.T) {
	t.Parallel()

	require.Equal(t, 0, policy.Shard("anything", 1))
	require.Equal(t, 0, policy.Shard("anything", 0))
	// Stable: the same character always lands on the same shard.
	require.Equal(t, policy.Shard("char-42", 8), policy.Shard("char-42", 8))
	// Every shard gets a share of many characters.
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		counts[policy.Shard("char-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+itoa(i), 4)]++
	}
	for i, c := range counts {
		require.Greater(t, c, 700, "shard %d got %d of 4000", i, c)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func FuzzCheck(f *testing.F) {
	f.Add("c", "s", int64(1))
	f.Add("", "s", int64(1))
	f.Add("c", "s\xff", int64(0))
	f.Fuzz(func(t *testing.T, char, sess string, unix int64) {
		var at time.Time
		if unix != 0 {
			at = time.Unix(unix, 0)
		}
		skip := policy.Check(policy.Record{CharacterID: char, SessionID: sess, LastActive: at})
		if skip == policy.SkipNone {
			// Whatever passes must survive a JSON round trip byte for byte.
			for _, id := range []string{char, sess} {
				require.NotEmpty(t, strings.TrimSpace(id))
				require.LessOrEqual(t, len(id), policy.MaxIDLength)
				require.True(t, strings.ToValidUTF8(id, "\uFFFD") == id)
			}
		}
	})
}

func TestCheckThresholds(t *testing.T) {
	t.Parallel()

	ok := policy.Policy{ID: 1, Enabled: true, MaxAge: "30 days", Threshold: days30}
	atCutoff := policy.Policy{ID: 2, CharacterID: "c", Enabled: true, MaxAge: "1 mon -30 days", Threshold: cutoff}
	after := policy.Policy{ID: 3, Enabled: true, MaxAge: "1 mon -31 days", Threshold: cutoff.Add(time.Hour)}
	disabled := after
	disabled.Enabled = false

	require.NoError(t, policy.CheckThresholds(cutoff, []policy.Policy{ok, disabled}))
	require.ErrorContains(t, policy.CheckThresholds(cutoff, []policy.Policy{ok, atCutoff}), `policy 2 (the policy of character "c")`)
	require.ErrorContains(t, policy.CheckThresholds(cutoff, []policy.Policy{after}), "policy 3 (the default policy)")
}

func TestInForce(t *testing.T) {
	t.Parallel()

	off := policy.Policy{ID: 3, CharacterID: "alice", MaxAge: "7 days", Threshold: policytest.Days7}
	s, err := policy.NewSet([]policy.Policy{off}, []policy.Hold{{CharacterID: "alice"}})
	require.NoError(t, err)
	require.Equal(t, policy.ReasonHeld, s.Decide("alice").Reason)
	require.Equal(t, policy.Decision{Reason: policy.ReasonDisabled}, s.InForce("alice"), "the hold aside, the own row is disabled")
}
