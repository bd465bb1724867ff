package job

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// LiveChecker tells which sessions the job knows are live: a list from the API is evidence that
// a session is gone only when it shows at least one of them. An endpoint that answers every
// list with nothing (a wrong base URL, a changed API, a hostile proxy) would otherwise make
// every session look deleted.
type LiveChecker interface {
	// Live counts those of ids that the source has for characterID and that are not recorded
	// deleted.
	Live(ctx context.Context, characterID string, ids []string) (int, error)
}

// WitnessSample is the most listed session IDs a list keeps to show that it can see the
// character's live sessions. A list that shows any live session shows it among a uniform
// sample of this size with high probability unless nearly all it shows is already deleted,
// which makes the list no witness anyway.
const WitnessSample = 1024

// witness keeps a uniform sample (reservoir) of up to WitnessSample IDs from one list.
type witness struct {
	seen int
	ids  []string
}

// add offers one listed ID to the sample.
func (w *witness) add(id string) {
	w.seen++
	if len(w.ids) < WitnessSample {
		w.ids = append(w.ids, id)
		return
	}
	if j := rand.IntN(w.seen); j < WitnessSample {
		w.ids[j] = id
	}
}

// errNoWitness is why a list that shows none of the character's live sessions proves nothing.
type errNoWitness struct {
	characterID string
	listed      int
}

func (e *errNoWitness) Error() string {
	if e.listed == 0 {
		return fmt.Sprintf("the list of %s is empty: an empty list is no evidence of absence", e.characterID)
	}
	return fmt.Sprintf("the list of %s shows none of the sessions the job knows are live (%d listed): it is no evidence of absence",
		e.characterID, e.listed)
}

// credible returns nil when the sample holds at least one session lc knows is live for
// characterID, an *errNoWitness when it holds none, or the store's error.
func (w *witness) credible(ctx context.Context, lc LiveChecker, characterID string) error {
	if len(w.ids) == 0 {
		return &errNoWitness{characterID: characterID}
	}
	n, err := lc.Live(ctx, characterID, w.ids)
	if err != nil {
		return fmt.Errorf("check the list of %s against the source: %w", characterID, err)
	}
	if n == 0 {
		return &errNoWitness{characterID: characterID, listed: w.seen}
	}
	return nil
}
