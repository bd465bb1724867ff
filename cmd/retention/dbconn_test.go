package main

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// Every connection attempt and every liveness ping of the pool is bounded, unless the
// connection string says otherwise: a server gone for good cannot hold the process.
func TestConnectionAttemptsAndPingsAreBounded(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig("postgres://u@db.example:5432/d")
	require.NoError(t, err)
	tuneConnections(cfg)
	require.Equal(t, connectTimeout, cfg.ConnConfig.ConnectTimeout)
	require.Equal(t, pingTimeout, cfg.PingTimeout)

	cfg, err = pgxpool.ParseConfig("postgres://u@db.example:5432/d?connect_timeout=3&pool_ping_timeout=1500ms")
	require.NoError(t, err)
	tuneConnections(cfg)
	require.Equal(t, 3*time.Second, cfg.ConnConfig.ConnectTimeout, "the connection string's own")
	require.Equal(t, 1500*time.Millisecond, cfg.PingTimeout, "the connection string's own")
}
