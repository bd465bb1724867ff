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

// The client's classes and the job's are one vocabulary: each maps to the job's class of the
// same word.
func TestClassWords(t *testing.T) {
	t.Parallel()
	for _, c := range []convai.Class{convai.Confirmed, convai.Retryable, convai.AuthRejected, convai.Permanent} {
		require.Equal(t, c.String(), classOf(c).String())
	}
	require.Equal(t, []string{"confirmed", "retryable", "auth_rejected", "permanent", "other"},
		[]string{job.Confirmed.String(), job.Retryable.String(), job.AuthRejected.String(), job.Permanent.String(), job.Class(0).String()})
}

// What a list says of is_added_to_memory reaches the job as it was said; anything else is
// unstated, never "not added".
func TestMemoryOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[convai.MemoryFlag]job.MemoryFlag{
		convai.MemoryAdded:     job.MemoryAdded,
		convai.MemoryNotAdded:  job.MemoryNotAdded,
		convai.MemoryUnstated:  job.MemoryUnstated,
		convai.MemoryFlag(-1):  job.MemoryUnstated,
		convai.MemoryFlag(100): job.MemoryUnstated,
	} {
		require.Equal(t, want, memoryOf(in), "%d", in)
	}
	require.Equal(t, []string{"added", "not_added", "unstated"},
		[]string{job.MemoryAdded.String(), job.MemoryNotAdded.String(), job.MemoryUnstated.String()})
}
