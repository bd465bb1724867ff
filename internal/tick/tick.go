// Package tick runs the periodic loops of a run's helpers (lock checks, lease renewal, sealing,
// progress): one ticker, stopped by a channel, that ends at the first call that says so.
package tick

import "time"

// Every calls fn every d until fn returns false or stop or also is closed. A nil channel is
// never closed: pass nil for also when one channel says when to stop.
func Every(d time.Duration, stop, also <-chan struct{}, fn func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-also:
			return
		case <-t.C:
			if !fn() {
				return
			}
		}
	}
}
