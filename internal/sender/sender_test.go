package sender

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/job"
)

func TestClassOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[convai.Class]job.Class{
		convai.Confirmed:    job.Confirmed,
		convai.Retryable:    job.Retryable,
		convai.AuthRejected: job.AuthRejected,
		convai.Permanent:    job.Permanent,
		convai.Class(0):     job.Retryable, // the zero class is never a confirmation
		convai.Class(99):    job.Retryable,
	} {
		require.Equal(t, want, classOf(in), in.String())
	}
}
