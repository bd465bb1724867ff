package source_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/convai-retention/retention/internal/pgtest"
)

// Every test closes its pools in its cleanup, and pgtest.Wrap closes the shared one: no pool's
// health check is left to ignore.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }
