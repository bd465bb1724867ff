package source

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/job"
)

// Rehearsal is a Store whose read-only view first brings retention.sessions up to date in a
// transaction that it then rolls back: a dry-run over a synced source reads the set a run would
// read, and writes nothing that lasts.
type Rehearsal struct {
	*Store
	// Sync writes into tx what a real sync would; its writes are rolled back.
	Sync func(ctx context.Context, tx pgx.Tx) error
}

var _ job.Store = (*Rehearsal)(nil)

// ReadOnly runs Sync, then fn against the store bound to the same transaction, in repeatable
// read, and rolls it all back.
func (r *Rehearsal) ReadOnly(ctx context.Context, fn func(job.Reader) error) error {
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("begin rehearsal: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // rolled back on purpose
	if err := r.Sync(ctx, tx); err != nil {
		return err
	}
	return fn(&Store{pool: r.pool, q: tx, src: r.src, cfg: r.cfg})
}

// Relation returns the name of the relation the store reads.
func (s *Store) Relation() Relation { return s.src.rel }
