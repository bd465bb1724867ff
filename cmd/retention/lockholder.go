package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/source"
)

// lockHolderTimeout bounds the look-up of who holds the run lock.
const lockHolderTimeout = 5 * time.Second

// lockedBy adds to err (a run that found the lock taken) who holds it: pid, user, application,
// client address and since when, and how to end that session if it is not a run. If the
// holders cannot be read, err comes back with the reason appended; it always still wraps
// job.ErrLocked.
func lockedBy(ctx context.Context, pool *pgxpool.Pool, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockHolderTimeout)
	defer cancel()
	holders, herr := source.LockHolders(ctx, pool)
	switch {
	case herr != nil:
		return fmt.Errorf("%w (could not tell who holds it: %v)", err, herr)
	case len(holders) == 0:
		return fmt.Errorf("%w (released since: try again)", err)
	}
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = h.String()
	}
	return fmt.Errorf("%w; held by %s. If that is not a retention run, end its session with "+
		"SELECT pg_terminate_backend(%d)", err, strings.Join(names, "; "), holders[0].PID)
}
