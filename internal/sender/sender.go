// Package sender connects the Convai client to the job: it sends deletes and lists through the
// client and turns the client's Result into the job's Answer. The binary and the tests that run real jobs share it, so they cannot classify
// answers differently.
package sender

import (
	"context"
	"time"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/job"
)

// Convai sends the job's requests through a Convai client.
type Convai struct{ Client *convai.Client }

var (
	_ job.Sender   = Convai{}
	_ job.Lister   = Convai{}
	_ job.Detailer = Convai{}
)

// Delete sends one request and classifies its answer for the job.
func (s Convai) Delete(ctx context.Context, characterID string, ids []string) job.Answer {
	r := s.Client.Delete(ctx, characterID, ids)
	return job.Answer{Class: classOf(r.Class), StatusCode: r.StatusCode, RetryAfter: r.RetryAfter, Detail: r.Detail, Err: r.Err}
}

// classOf maps the client's classes to the job's. Anything unknown is Retryable: never a
// confirmation, never a reason to give up on a chunk.
func classOf(c convai.Class) job.Class {
	switch c {
	case convai.Confirmed:
		return job.Confirmed
	case convai.AuthRejected:
		return job.AuthRejected
	case convai.Permanent:
		return job.Permanent
	}
	return job.Retryable
}

// List lists a character's sessions, one request, and classifies the answer for the job. An
// element whose ID was too long to read comes with an empty SessionID, which no rule accepts.
func (s Convai) List(ctx context.Context, characterID string, fn func(job.ListedSession) error) job.Answer {
	r := s.Client.List(ctx, characterID, func(l convai.ListedSession) error {
		return fn(job.ListedSession{SessionID: l.SessionID, Start: l.Start, Memory: memoryOf(l.Memory)})
	})
	return answer(r)
}

// memoryOf maps the client's is_added_to_memory to the job's. Anything unknown is unstated:
// never "not added".
func memoryOf(m convai.MemoryFlag) job.MemoryFlag {
	switch m {
	case convai.MemoryAdded:
		return job.MemoryAdded
	case convai.MemoryNotAdded:
		return job.MemoryNotAdded
	}
	return job.MemoryUnstated
}

// Details reads one session's latest interaction, one request, and classifies the answer.
func (s Convai) Details(ctx context.Context, characterID, sessionID string) (time.Time, job.Answer) {
	d, r := s.Client.Details(ctx, characterID, sessionID)
	return d.Latest, answer(r)
}

func answer(r convai.Result) job.Answer {
	return job.Answer{Class: classOf(r.Class), StatusCode: r.StatusCode, RetryAfter: r.RetryAfter, Detail: r.Detail, Err: r.Err}
}
