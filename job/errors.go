package job

import (
	"errors"
	"fmt"
)

// ErrLocked is wrapped by Store.StartRun, and so by Run, when another run holds the lock of the
// shard, or runs with another shard layout are in progress.
var ErrLocked = errors.New("another retention run holds the lock")

// ErrLockLost is wrapped by RunStore.Claim and RunStore.CheckLock, and so by Run, when the run
// lock may have been lost: its connection or its lease is gone.
var ErrLockLost = errors.New("lost the run lock")

// ErrKeyRejected is returned by Run when the API answered 401 or 403: the run stopped sending.
var ErrKeyRejected = errors.New("the API rejected the key")

// ConfigError is returned by Config.Validate for a setting out of range.
type ConfigError struct {
	Field, Value, Want string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid --%s %s: want %s", e.Field, e.Value, e.Want)
}

// AbortError is returned by Run when the safety cap stopped the run before its first claim: its
// policies would have sent more sessions than allowed, and it sent none of them (only the
// sessions erasure requests ask for, which are never capped).
type AbortError struct {
	Cap CapCheck
}

func (e *AbortError) Error() string {
	sent := "it sent nothing"
	if e.Cap.ErasureSessions > 0 {
		sent = fmt.Sprintf("it sent only the %d sessions erasure requests ask for", e.Cap.ErasureSessions)
	}
	return fmt.Sprintf("safety cap: the run would send %d sessions, above the limit of %d (%s); %s",
		e.Cap.WouldSend, e.Cap.Limit, e.Cap.Reason(), sent)
}
