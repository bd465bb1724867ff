package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Keepalive settings of the job's database connections. If the pod vanishes (node loss,
// network partition), the server must notice the dead peer soon: its sessions end, and with them
// the run lock, or every later run would exit 3 for hours. With these, the server sends its first
// probe after 30 s of silence and drops the connection after 6 unanswered probes 10 s apart,
// and tcp_user_timeout drops it when sent data stays unacknowledged for 90 s: about 90 s in
// all, within two minutes. The job's own side probes the same way, to notice a vanished server.
// Through a connection pooler these reach only the pooler's sessions to the server; the run
// lock does not depend on them: its lease (source.LockLeaseDefault, 90 s) is kept by the server.
const (
	keepaliveIdle     = 30 * time.Second
	keepaliveInterval = 10 * time.Second
	keepaliveCount    = 6
	tcpUserTimeout    = 90 * time.Second
	// connectTimeout bounds one connection attempt (dial, TLS, authentication) when the
	// connection string gives no connect_timeout: an unreachable server fails each attempt in
	// bounded time rather than after the kernel's SYN retries (about two minutes).
	connectTimeout = 10 * time.Second
	// pingTimeout bounds the liveness ping the pool sends on a connection idle for a while
	// before handing it out (pool_ping_timeout in the connection string wins). Without it, a
	// ping on a connection whose server vanished waits for tcp_user_timeout, and closing the
	// pool waits for the ping: the process outlived its run by a minute and a half.
	pingTimeout = 5 * time.Second
)

// tuneConnections bounds each connection attempt (connectTimeout) and each liveness ping
// (pingTimeout), and sets TCP keepalives and tcp_user_timeout on both ends of every connection of
// cfg: the server's with set_config right after connecting (any role may; on a Unix socket
// they do nothing), the job's through its dialer. Settings the connection string gives itself
// are kept. They are set after connecting rather than as startup parameters, because a pooler
// such as PgBouncer refuses startup parameters it does not know; a server that refuses them
// (older than PostgreSQL 12) keeps its defaults, and the connection is used all the same.
func tuneConnections(cfg *pgxpool.Config) {
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = pingTimeout
	}
	var names, values []string
	for _, kv := range [][2]string{
		{"tcp_keepalives_idle", seconds(keepaliveIdle)},
		{"tcp_keepalives_interval", seconds(keepaliveInterval)},
		{"tcp_keepalives_count", strconv.Itoa(keepaliveCount)},
		{"tcp_user_timeout", millis(tcpUserTimeout)},
	} {
		if cfg.ConnConfig.RuntimeParams[kv[0]] == "" {
			names, values = append(names, kv[0]), append(values, kv[1])
		}
	}
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if after != nil {
			if err := after(ctx, conn); err != nil {
				return err
			}
		}
		if len(names) == 0 {
			return nil
		}
		_, err := conn.Exec(ctx, "SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) AS s(n, v)", names, values)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return nil // the server refused them: its defaults stay
		}
		return err
	}
	d := &net.Dialer{
		Timeout: cfg.ConnConfig.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepaliveIdle, Interval: keepaliveInterval, Count: keepaliveCount,
		},
		Control: setUserTimeout(tcpUserTimeout),
	}
	cfg.ConnConfig.DialFunc = d.DialContext
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// warnInsecureDatabase warns, loudly, when the connection string lets the job talk to a
// database on another machine without an authenticated encrypted connection: sslmode disable,
// allow or prefer (the default). Loopback hosts and Unix sockets are not warned about.
func warnInsecureDatabase(log *slog.Logger, dsn string) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return // connect reports it
	}
	plain := false
	for _, fb := range append([]*pgconn.FallbackConfig{{Host: cfg.Host, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...) {
		if fb.TLSConfig == nil && !localHost(fb.Host) {
			plain = true
		}
	}
	if plain {
		log.Warn("INSECURE DATABASE CONNECTION: sslmode is disable, allow or prefer (the default) for a host that is "+
			"not this machine; the connection may be unencrypted and the server is not authenticated, so the "+
			"password and the data can be read or changed on the way. Set sslmode=verify-full (and sslrootcert) "+
			"in DATABASE_URL", "host", cfg.Host)
	}
}

// connectDatabase reads DATABASE_URL (databaseURL), warns on log when the connection may be
// unencrypted (warnInsecureDatabase), and opens a pool of conns connections with open: connect,
// or connectCurrent to refuse an old schema.
func (a *app) connectDatabase(ctx context.Context, log *slog.Logger, open func(context.Context, string, int32) (*pgxpool.Pool, error),
	conns int32) (*pgxpool.Pool, error) {
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	warnInsecureDatabase(log, dsn)
	return open(ctx, dsn, conns)
}

// localHost reports whether host is a Unix socket directory or a loopback name or address.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
