package source

import (
	"errors"
	"fmt"
)

// ErrLogLocked is returned by Store.Seal (and so by Run.Finish) when the log's lock was not
// free within the 15 s retention.seal waits: another session holds seal() open in a
// transaction (pg_stat_activity shows which).
var ErrLogLocked = errors.New("the tamper-evident log is locked: another session has held retention.seal() for more than 15 s (see pg_stat_activity)")

// InvalidRelationError is returned by ParseRelation for a source name that is not a plain
// SCHEMA.RELATION identifier.
type InvalidRelationError struct {
	Value  string
	Reason string
}

func (e *InvalidRelationError) Error() string {
	return fmt.Sprintf("invalid source %q: %s", e.Value, e.Reason)
}

// SourceError is returned by Store.Inspect when the source relation is missing or lacks the
// columns the job needs. It is an operator's configuration error.
type SourceError struct {
	Relation string
	Problem  string
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("source %s: %s", e.Relation, e.Problem)
}

// ReadError is returned by Syncer.Sync and Syncer.Into when reading the source failed: the
// error came from the source's database, as Login, not from the retention database. A refused
// privilege there is a grant on the source to Login.
type ReadError struct {
	Relation Relation
	// Login is the role the source's pool connects as ("" when its configuration names none).
	Login string
	Err   error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("sync %s: read the source: %v", e.Relation, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }
