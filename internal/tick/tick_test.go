package tick_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/internal/tick"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEvery(t *testing.T) {
	t.Parallel()

	t.Run("EndsWhenFnSaysSo", func(t *testing.T) {
		t.Parallel()
		calls := 0
		tick.Every(time.Millisecond, nil, nil, func() bool {
			calls++
			return calls < 3
		})
		require.Equal(t, 3, calls)
	})

	for name, which := range map[string]int{"EndsWhenStopIsClosed": 0, "EndsWhenAlsoIsClosed": 1} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			chans := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
			ticked := make(chan struct{}, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick.Every(time.Millisecond, chans[0], chans[1], func() bool {
					select {
					case ticked <- struct{}{}:
					default:
					}
					return true
				})
			}()
			<-ticked
			close(chans[which])
			<-done
		})
	}
}
