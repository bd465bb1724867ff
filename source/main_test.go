package source_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/convai-retention/retention/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Wrap(m),
		// pgx pools keep a health-check goroutine until closed in a test's cleanup.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}
