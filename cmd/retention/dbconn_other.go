//go:build !linux

package main

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not available; keepalives still apply.
func setUserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
