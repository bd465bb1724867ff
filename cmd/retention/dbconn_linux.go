package main

import (
	"syscall"
	"time"
)

// sockoptTCPUserTimeout is TCP_USER_TIMEOUT of linux/tcp.h; package syscall does not name it.
const sockoptTCPUserTimeout = 0x12

// setUserTimeout returns a dialer Control that sets TCP_USER_TIMEOUT on TCP sockets: a
// connection whose sent data stays unacknowledged that long is dropped.
func setUserTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, sockoptTCPUserTimeout, int(d/time.Millisecond))
		})
		if err != nil {
			return err
		}
		return serr
	}
}
