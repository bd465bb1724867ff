package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestIsTransient: what a database restart or failover produces is retried; what retrying cannot
// change (no row where one was expected, a constraint, a cancelled run) is not. A run whose row
// another run has already closed must not retry its final update for a minute.
func TestIsTransient(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Code: code} }
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"admin shutdown (restart, failover)", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now (starting up)", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"serialization failure", pg("40001"), true},
		{"deadlock", pg("40P01"), true},
		{"too many connections", pg("53300"), true},
		{"refused connection", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"connection closed mid-answer", fmt.Errorf("record: %w", io.ErrUnexpectedEOF), true},
		{"unique violation", pg("23505"), false},
		{"check violation", pg("23514"), false},
		{"syntax error", pg("42601"), false},
		{"read-only transaction", pg("25006"), false},
		{"no rows", fmt.Errorf("finish run 7: %w", pgx.ErrNoRows), false},
		{"cancelled", fmt.Errorf("claim: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("claim: %w", context.DeadlineExceeded), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, IsTransient(tt.err), "%v", tt.err)
		})
	}
}
