package source

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/tick"
	"github.com/convai-retention/retention/job"
)

// lockClass is the first key of every run lock ("RETE"); the second is shardKey.
const lockClass = int32(0x52455445)

func shardKey(s job.Shard) int32 { return int32(s.Count)<<16 | int32(s.Index) }

// LockLeaseDefault is how long the server keeps a run's lock once the run stops renewing it (its
// process frozen or killed without its socket closing, its node gone, its network cut): the
// lock's transaction ends when it has been idle that long, and the lock with it. A run renews
// the lease every lease/9 (10 s by default), so it survives eight missed renewals.
const LockLeaseDefault = 90 * time.Second

// lockCheckTimeout bounds one round trip on the lock's connection.
const lockCheckTimeout = 5 * time.Second

// runLock is a run's lock: pg_try_advisory_xact_lock of the shard, taken in a transaction that
// stays open for the whole run on a connection of its own. A connection pooler in transaction
// mode keeps an open transaction on one server session, and so does one in session mode; the
// lock ends with the transaction: when the run rolls it back, when the connection closes (a
// pooler closes the server session of a client that left mid-transaction), or when the session
// has been idle for the lease (idle_in_transaction_session_timeout, set for this transaction
// only), whichever comes first. The transaction writes nothing, and between statements holds
// no snapshot, so it holds back no vacuum.
type runLock struct {
	conn *pgx.Conn
	tx   pgx.Tx
	// pid is the server process holding the lock, which start_run and the claims check.
	pid int32

	mu   sync.Mutex // one statement at a time on conn; guards lost
	lost error      // set by the first failed check

	stop     chan struct{}
	renewed  chan struct{} // closed when renew returns
	stopOnce sync.Once
}

// takeLock takes the run lock of shard without waiting, on a connection taken out of the pool,
// with the given lease, and starts renewing it. It fails with an error wrapping job.ErrLocked
// when another run holds it, or holds the lock of a shard of another layout.
func (s *Store) takeLock(ctx context.Context, shard job.Shard, lease time.Duration) (*runLock, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect for run lock: %w", err)
	}
	conn := pc.Hijack()
	fail := func(err error) (*runLock, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockCheckTimeout)
		defer cancel()
		_ = conn.Close(cctx) //nolint:errcheck // closing ends the transaction and its lock
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail(fmt.Errorf("take run lock: %w", err))
	}
	// Every statement of the lock's transaction goes by the simple protocol: a statement by the
	// extended protocol leaves its portal open in the transaction until the next one, and with it
	// a snapshot that would hold back vacuum for the whole run. transaction_timeout (PostgreSQL
	// 17) would end a long run's transaction: off for this one, where the server has it.
	var ok bool
	var pid int32
	err = tx.QueryRow(ctx, `
		SELECT pg_try_advisory_xact_lock($1, $2), pg_backend_pid(),
		       set_config('idle_in_transaction_session_timeout', $3, true),
		       CASE WHEN current_setting('transaction_timeout', true) IS NOT NULL
		            THEN set_config('transaction_timeout', '0', true) END`,
		pgx.QueryExecModeSimpleProtocol, lockClass, shardKey(shard), strconv.FormatInt(lease.Milliseconds(), 10)).Scan(&ok, &pid, nil, nil)
	if err != nil {
		return fail(fmt.Errorf("take run lock: %w", err))
	}
	if !ok {
		return fail(fmt.Errorf("%w (shard %d of %d)", job.ErrLocked, shard.Index, shard.Count))
	}
	keys, err := heldKeys(ctx, tx)
	if err != nil {
		return fail(err)
	}
	for _, k := range keys {
		if count := int(k >> 16); count != shard.Count {
			return fail(fmt.Errorf("%w: shard %d of %d is running, and this run splits by %d", job.ErrLocked, k&0xffff, count, shard.Count))
		}
	}
	l := &runLock{conn: conn, tx: tx, pid: pid, stop: make(chan struct{}), renewed: make(chan struct{})}
	go l.renew(lease / 9)
	return l, nil
}

// heldKeys returns the shard keys of all run locks held right now in this database (advisory
// locks are per database, so several databases on one server do not see each other's runs). It
// reads them by the simple protocol, for the lock's transaction.
func heldKeys(ctx context.Context, q querier) ([]int32, error) {
	rows, err := q.Query(ctx, `
		SELECT objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2 AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		pgx.QueryExecModeSimpleProtocol, lockClass)
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

// renew uses the lock's connection every interval, which restarts the server's idle timer of
// the lock's transaction, until release or the first failure.
func (l *runLock) renew(every time.Duration) {
	defer close(l.renewed)
	tick.Every(every, l.stop, nil, func() bool {
		return l.check(context.Background()) == nil
	})
}

// check makes one round trip in the lock's transaction, within lockCheckTimeout. An error (the
// connection or its server session gone, the lease ended by the server) means the lock may be
// held by another run now: it wraps job.ErrLockLost, and every later check returns it too.
func (l *runLock) check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	ctx, cancel := context.WithTimeout(ctx, lockCheckTimeout)
	defer cancel()
	if err := l.conn.Ping(ctx); err != nil {
		l.lost = fmt.Errorf("%w: %v", job.ErrLockLost, err)
		return l.lost
	}
	return nil
}

// release stops the renewal, rolls the lock's transaction back (the lock is free when it
// returns, also through a pooler) and closes the connection. It is safe to call more than once.
func (l *runLock) release(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.renewed
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn.IsClosed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockCheckTimeout)
	defer cancel()
	var err error
	if l.lost == nil {
		err = l.tx.Rollback(ctx)
	}
	if cerr := l.conn.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
