package job

import "time"

// Observer is told what a run does, for metrics and progress. Its methods are called from
// several goroutines, must be safe for that, and must return quickly.
type Observer interface {
	// RunStarted is called once the run row exists (never for a dry-run).
	RunStarted(info RunInfo)
	// Selected is called with each session handed on to be sent.
	Selected(characterID string)
	// Skipped is called with sessions met but not sent, by reason (malformed, duplicate, held).
	Skipped(reason string, n int64)
	// Requested is called after each request with its answer and how long it took.
	Requested(a Answer, latency time.Duration)
	// Retrying is called before a request is tried again.
	Retrying(a Answer)
	// Recorded is called once a chunk's outcomes are written.
	Recorded(deleted, failed int)
	// RunFinished is called with the final summary of a real run.
	RunFinished(s *Summary)
}

// NopObserver ignores everything. Embed it to implement only some of Observer.
type NopObserver struct{}

func (NopObserver) RunStarted(RunInfo)              {}
func (NopObserver) Selected(string)                 {}
func (NopObserver) Skipped(string, int64)           {}
func (NopObserver) Requested(Answer, time.Duration) {}
func (NopObserver) Retrying(Answer)                 {}
func (NopObserver) Recorded(int, int)               {}
func (NopObserver) RunFinished(*Summary)            {}

// CapObserver is an Observer that also wants the safety cap's count, made before the run's first
// claim: what the run would send. The run calls CapChecked when its Observer implements it.
type CapObserver interface {
	CapChecked(CapCheck)
}
