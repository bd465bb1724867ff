package source

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// LockHolder is a session holding a run lock, as pg_locks and pg_stat_activity show it. The
// text fields are empty where the server hides them: pg_stat_activity shows another role's
// client address and application name only to superusers and members of pg_read_all_stats.
type LockHolder struct {
	PID         int32
	User        string
	Application string
	// Client is the client's address, "local socket" for a Unix-domain socket, or "" if hidden.
	Client string
	// Since is when the holding session connected (it has held the lock at most that long).
	Since time.Time
	// ShardIndex and ShardCount are the shard of the lock.
	ShardIndex, ShardCount int
}

// String describes h for an operator: who holds which lock, from where, since when.
func (h LockHolder) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d", h.PID)
	for _, f := range []struct{ name, v string }{{"user", h.User}, {"application", h.Application}, {"client", h.Client}} {
		if f.v != "" {
			fmt.Fprintf(&b, ", %s %q", f.name, f.v)
		}
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(&b, ", connected since %s", h.Since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, " (shard %d of %d)", h.ShardIndex, h.ShardCount)
	return b.String()
}

// LockHolders returns the sessions holding a run lock (any shard) in the current database,
// oldest connection first. It is meant for the message of a run that found the lock taken:
// whoever holds it, a run or any other role that took the same advisory lock.
func LockHolders(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) ([]LockHolder, error) {
	rows, err := q.Query(ctx, `
		SELECT l.pid, l.objid::bigint, coalesce(a.usename, ''), coalesce(a.application_name, ''),
		       CASE WHEN a.client_addr IS NOT NULL THEN host(a.client_addr) || ':' || a.client_port
		            WHEN a.client_port = -1 THEN 'local socket'
		            ELSE '' END,
		       a.backend_start
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = $1::bigint::oid AND l.objsubid = 2 AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY a.backend_start NULLS LAST, l.pid`, lockClass)
	if err != nil {
		return nil, fmt.Errorf("list run lock holders: %w", err)
	}
	holders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LockHolder, error) {
		var h LockHolder
		var key int64
		var since *time.Time
		err := r.Scan(&h.PID, &key, &h.User, &h.Application, &h.Client, &since)
		if since != nil {
			h.Since = *since
		}
		h.ShardIndex, h.ShardCount = int(key&0xffff), int(key>>16)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("list run lock holders: %w", err)
	}
	return holders, nil
}
