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
}

var _ job.VerifyObserver = (*Verify)(nil)

// NewVerify returns the metrics of a verification, both results at zero.
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
	v.reg.MustRegister(v.verified, v.last)
	return v
}

// Gatherer returns the registry of the verification's metrics.
func (v *Verify) Gatherer() prometheus.Gatherer { return v.reg }

// Verified implements job.VerifyObserver.
func (v *Verify) Verified(present, absent int) {
	v.verified.WithLabelValues("present").Add(float64(present))
	v.verified.WithLabelValues("absent").Add(float64(absent))
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
