package audit

import (
	"errors"
	"fmt"
)

// ErrChainBroken is wrapped by Result.Err when Verify found the chain and the rows disagree:
// something was edited, removed or inserted.
var ErrChainBroken = errors.New("the seal chain is broken")

// CheckpointError is returned by ParseCheckpoint for a value that is not SEQ:HASH.
type CheckpointError struct {
	Value, Reason string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("invalid checkpoint %q: %s", e.Value, e.Reason)
}
