package source_test

import (
	"testing"

	"github.com/convai-retention/retention/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
