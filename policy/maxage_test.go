package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/policy/policytest"
)

func TestCheckMaxAge(t *testing.T) {
	t.Parallel()
	for _, c := range policytest.MaxAgeCases {
		t.Run(c.Text, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.Fault, policy.CheckMaxAge(c.Interval))
		})
	}
	// Spans beyond an int64 of microseconds still compare.
	require.Equal(t, policy.MaxAgeOverMax, policy.CheckMaxAge(policy.Interval{Months: 1<<31 - 1, Days: 1<<31 - 1, Micros: 1<<63 - 1}))
	require.Equal(t, policy.MaxAgeNotPositive, policy.CheckMaxAge(policy.Interval{Months: -1 << 31, Days: -1 << 31, Micros: -1 << 63}))
}
