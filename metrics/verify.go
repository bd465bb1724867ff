package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/convai-retention/retention/job"
)

// Verify holds the metrics of one `retention verify`, on a registry of their own: pushed, they
// replace only their own names in the Pushgateway's group, never a run's.
type Verify struct {
	now      func() time.Time
	reg      *prometheus.Registry
	verified *prometheus.CounterVec
	last     *gauge
	// memoryLeft and erasureMemoryLeft are what deletions left in long-term memory.
	memoryLeft        *gauge
	erasureMemoryLeft *gauge
	// rechecks counts this verification's re-checks of erased memories by result; foundAgain
	// is the memories found again and not erased since.
	rechecks   *prometheus.CounterVec
	foundAgain *gauge
}

var (
	_ job.VerifyObserver        = (*Verify)(nil)
	_ job.MemoryLeftObserver    = (*Verify)(nil)
	_ job.MemoryRecheckObserver = (*Verify)(nil)
)

// NewVerify returns the metrics of a verification, every counter at zero.
func NewVerify(cfg Config) *Verify {
	v := &Verify{now: cfg.Now, reg: prometheus.NewRegistry()}
	if v.now == nil {
		v.now = time.Now
	}
	v.verified = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "sessions_verified_total",
		Help: "Deleted sessions checked against Convai's list, by result: absent (verified) or present (a verification failure; the next run sends the session again)."},
		[]string{"result"})
	v.verified.WithLabelValues("absent")
	v.verified.WithLabelValues("present")
	v.last = newGauge("last_verify_timestamp_seconds", "When the last verification finished, in Unix seconds.")
	v.memoryLeft = newGauge("deleted_sessions_memory_left",
		"Deleted sessions Convai listed as added to long-term memory, with no erasure of their end user's memory of the character since "+
			"(over all time; Convai's word, as verifications and discover recorded it). Absent until a verification read it.")
	v.erasureMemoryLeft = newGauge("erasure_requests_memory_left",
		"Completed erasure requests with such sessions: long-term memory left behind by an erasure. Absent until a verification read it.")
	v.rechecks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "memory_rechecks_total",
		Help: "Erased long-term memories (an end user's with a character) listed again by the verification, by result: gone (stayed erased), " +
			"found (the erasure is refuted; the next run erases again) or not_checked (no whole list could be read)."},
		[]string{"result"})
	for _, r := range []job.RecheckResult{job.RecheckGone, job.RecheckFound, job.RecheckNotChecked} {
		v.rechecks.WithLabelValues(string(r))
	}
	v.foundAgain = newGauge("memories_found_again",
		"End users' memories with a character (per end user request and character) that a verification found again after their erasure, "+
			"with no erasure standing since (retention.end_user_memory where memory_reopened). Absent until a verification read it.")
	v.reg.MustRegister(v.verified, v.last, v.memoryLeft, v.erasureMemoryLeft, v.rechecks, v.foundAgain)
	return v
}

// Gatherer returns the registry of the verification's metrics.
func (v *Verify) Gatherer() prometheus.Gatherer { return v.reg }

// Verified implements job.VerifyObserver.
func (v *Verify) Verified(present, absent int) {
	v.verified.WithLabelValues("present").Add(float64(present))
	v.verified.WithLabelValues("absent").Add(float64(absent))
}

// MemoryLeft implements job.MemoryLeftObserver.
func (v *Verify) MemoryLeft(left job.MemoryLeft) {
	v.memoryLeft.set(float64(left.Sessions))
	v.erasureMemoryLeft.set(float64(left.ErasureRequests))
	v.foundAgain.set(float64(left.MemoriesFoundAgain))
}

// MemoryRechecked implements job.MemoryRecheckObserver.
func (v *Verify) MemoryRechecked(r job.RecheckResult) {
	v.rechecks.WithLabelValues(string(r)).Inc()
}

// Finished sets the time of the last verification.
func (v *Verify) Finished() { v.last.set(unixSeconds(v.now())) }

// Push sends the verification's metrics to the Pushgateway at url, in the group of the runs
// (job PushJob), with POST: the runs' metrics there are left as they are.
func (v *Verify) Push(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	if err := push.New(url, PushJob).Gatherer(v.reg).Client(&http.Client{Transport: transport}).AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics: %w", err)
	}
	return nil
}
