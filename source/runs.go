package source

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/job"
)

// lockClass is the first key of every run lock ("RETE"); the second is shardKey.
const lockClass = int32(0x52455445)

func shardKey(s job.Shard) int32 { return int32(s.Count)<<16 | int32(s.Index) }

// runLock holds a run lock on a connection of its own, taken out of the pool.
type runLock struct {
	conn *pgx.Conn
	heldLock
}

// Lock takes the run lock of shard without waiting. It fails with ErrLocked when another run
// holds it, or when runs with another shard count are in progress (their shards would overlap
// this one's).
func (s *Store) Lock(ctx context.Context, shard job.Shard) (job.Lock, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect for run lock: %w", err)
	}
	conn := pc.Hijack()
	fail := func(err error) (job.Lock, error) {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockClass, shardKey(shard)).Scan(&ok); err != nil {
		return fail(fmt.Errorf("take run lock: %w", err))
	}
	if !ok {
		return fail(fmt.Errorf("%w (shard %d of %d)", job.ErrLocked, shard.Index, shard.Count))
	}
	keys, err := heldKeys(ctx, conn)
	if err != nil {
		return fail(err)
	}
	for _, k := range keys {
		if count := int(k >> 16); count != shard.Count {
			return fail(fmt.Errorf("%w: shard %d of %d is running, and this run splits by %d", job.ErrLocked, k&0xffff, count, shard.Count))
		}
	}
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return fail(fmt.Errorf("take run lock: %w", err))
	}
	return &runLock{conn: conn, heldLock: heldLock{key: shardKey(shard), pid: pid}}, nil
}

// heldKeys returns the shard keys of all run locks held right now in this database (advisory
// locks are per database, so several databases on one server do not see each other's runs).
func heldKeys(ctx context.Context, q querier) ([]int32, error) {
	rows, err := q.Query(ctx, `
		SELECT objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2 AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, lockClass)
	if err != nil {
		return nil, fmt.Errorf("list run locks: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int32, error) {
		var k int64
		err := r.Scan(&k)
		return int32(k), err
	})
	if err != nil {
		return nil, fmt.Errorf("list run locks: %w", err)
	}
	return keys, nil
}

func (l *runLock) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", job.ErrLockLost, err)
	}
	return nil
}

// Release unlocks, then closes the lock's connection. Closing alone would also free the lock,
// but the server does so a moment after the client has gone: a run started right after this
// one could find it still held.
func (l *runLock) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	if cerr := l.conn.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// StartRun marks dead runs interrupted and inserts the new run, in one transaction. A run still
// marked running is dead when no one holds its shard's lock, or when its lock is the one this
// run holds now. Its pending sessions become failed, so they are sent again.
func (s *Store) StartRun(ctx context.Context, start job.RunStart) (job.RunInfo, error) {
	settings, err := json.Marshal(start.Settings)
	if err != nil {
		return job.RunInfo{}, fmt.Errorf("encode settings: %w", err)
	}
	var info job.RunInfo
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		keys, err := heldKeys(ctx, tx)
		if err != nil {
			return err
		}
		held := map[int32]bool{}
		for _, k := range keys {
			held[k] = true
		}
		rows, err := tx.Query(ctx, `SELECT id, shard_index, shard_count FROM retention.runs WHERE status = 'running' FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("find unfinished runs: %w", err)
		}
		var dead []int64
		var id int64
		var idx, count int
		_, err = pgx.ForEachRow(rows, []any{&id, &idx, &count}, func() error {
			k := shardKey(job.Shard{Index: idx, Count: count})
			if !held[k] || k == shardKey(start.Shard) {
				dead = append(dead, id)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("find unfinished runs: %w", err)
		}
		if len(dead) > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE retention.deletions
				SET status = 'failed', completed_at = now(),
				    error = 'the run ended before an answer was recorded; the session will be sent again'
				WHERE run_id = ANY($1) AND status = 'pending'`, dead); err != nil {
				return fmt.Errorf("close pending deletions of dead runs: %w", err)
			}
			if _, err := tx.Exec(ctx, `
				UPDATE retention.runs r
				SET status = 'interrupted', finished_at = now(),
				    deleted = (SELECT count(*) FROM retention.deletions d WHERE d.run_id = r.id AND d.status = 'deleted'),
				    failed  = (SELECT count(*) FROM retention.deletions d WHERE d.run_id = r.id AND d.status = 'failed'),
				    error = coalesce(r.error, 'the process ended without finishing the run')
				WHERE r.id = ANY($1)`, dead); err != nil {
				return fmt.Errorf("mark dead runs interrupted: %w", err)
			}
		}
		info.Recovered = dead
		err = tx.QueryRow(ctx, `
			INSERT INTO retention.runs (cutoff, source, shard_index, shard_count, settings, host, pid, version)
			VALUES (now(), $1, $2, $3, $4, $5, $6, $7)
			RETURNING id, cutoff`,
			start.Source, start.Shard.Index, start.Shard.Count, settings, start.Host, start.PID, start.Version,
		).Scan(&info.ID, &info.Cutoff)
		if err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		return nil
	})
	if err != nil {
		return job.RunInfo{}, fmt.Errorf("start run: %w", err)
	}
	if l, ok := start.Lock.(*runLock); ok {
		s.held.Store(info.ID, l.heldLock)
	}
	return info, nil
}

// FinishRun writes the run's final status and counts. sum's deleted and failed counts are the
// outcomes the run recorded; sessions left pending (their outcome could not be written) become
// failed and are added to them, and a succeeded run with failures becomes partial.
func (s *Store) FinishRun(ctx context.Context, runID int64, sum *job.Summary) error {
	defer s.held.Delete(runID)
	skipped, err := json.Marshal(sum.SkippedByReason)
	if err != nil {
		return fmt.Errorf("encode skip reasons: %w", err)
	}
	var errText *string
	if sum.Error != "" {
		errText = &sum.Error
	}
	// finish may run more than once (a commit lost to a restart is retried): it works from the
	// counts as they were before the first try.
	base := *sum
	return s.retrying(ctx, func(ctx context.Context) error {
		*sum = base
		return s.finish(ctx, runID, sum, skipped, errText)
	})
}

func (s *Store) finish(ctx context.Context, runID int64, sum *job.Summary, skipped []byte, errText *string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE retention.deletions
			SET status = 'failed', completed_at = now(),
			    error = 'no outcome could be recorded; the session will be sent again'
			WHERE run_id = $1 AND status = 'pending'`, runID)
		if err != nil {
			return fmt.Errorf("close pending deletions of run %d: %w", runID, err)
		}
		// The run's recorded outcomes were counted as they were written; the rows just closed
		// add to the failed ones. Counting them again here would read every row of the run.
		tag0 := tag.RowsAffected() // closed pending rows were selected and counted as not sent
		deleted, failed, status := sum.Deleted, sum.Failed+tag0, sum.Status
		if status == job.StatusSucceeded && failed > 0 {
			status = job.StatusPartial
		}
		tag, err = tx.Exec(ctx, `
			UPDATE retention.runs
			SET status = $2, finished_at = now(), selected = $3, skipped = $4, skipped_by_reason = $5,
			    budget_reached = $6, error = $7, deleted = $8, failed = $9
			WHERE id = $1 AND status = 'running'`,
			runID, string(status), sum.Selected, sum.Skipped, skipped, sum.BudgetReached, errText, deleted, failed)
		switch {
		case err != nil:
			return fmt.Errorf("finish run %d: %w", runID, err)
		case tag.RowsAffected() == 0:
			return fmt.Errorf("finish run %d: it is no longer marked running: another run found it dead and marked it interrupted (was its lock lost?)", runID)
		}
		sum.Status, sum.Failed = status, failed
		sum.NotSent = max(sum.NotSent-tag0, 0)
		return nil
	})
}
