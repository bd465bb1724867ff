package policy

import "math/big"

// Interval is a PostgreSQL interval as the server holds one: months, days and microseconds,
// each with its own sign ('1 mon -2 days' is Months 1, Days -2).
type Interval struct {
	Months int32
	Days   int32
	Micros int64
}

// The bounds of a policy's max_age, as retention.policies holds them (its trigger
// policies_max_age_floor and its CHECK policies_max_age_check): at least one hour, at most 200
// years, no part negative. Intervals compare as PostgreSQL compares them: a month is 30 days, a
// day 24 hours.
var (
	MaxAgeMin = Interval{Micros: 3600 * 1_000_000}
	MaxAgeMax = Interval{Months: 200 * 12}
)

// MaxAgeFault is what is wrong with a max_age; MaxAgeOK when nothing is.
type MaxAgeFault int

// The faults CheckMaxAge finds, in the order the schema checks them.
const (
	MaxAgeOK           MaxAgeFault = iota
	MaxAgeNotPositive              // zero or less
	MaxAgeUnderMin                 // positive but under MaxAgeMin
	MaxAgeOverMax                  // over MaxAgeMax
	MaxAgeNegativePart             // positive overall, but a part is negative ('1 mon -2 days')
)

// CheckMaxAge says whether a policy may keep sessions for iv: the rule of retention.policies,
// so that a policy file's every mistake can be named before the table refuses the first one.
func CheckMaxAge(iv Interval) MaxAgeFault {
	span := iv.span()
	switch {
	case span.Sign() <= 0:
		return MaxAgeNotPositive
	case span.Cmp(MaxAgeMin.span()) < 0:
		return MaxAgeUnderMin
	case span.Cmp(MaxAgeMax.span()) > 0:
		return MaxAgeOverMax
	case iv.Months < 0 || iv.Days < 0 || iv.Micros < 0:
		return MaxAgeNegativePart
	}
	return MaxAgeOK
}

// span is the interval's length in microseconds as PostgreSQL compares intervals. It may exceed
// an int64 (2^31 months), hence big.
func (iv Interval) span() *big.Int {
	const day = 24 * 3600 * 1_000_000
	s := big.NewInt(int64(iv.Months))
	s.Mul(s, big.NewInt(30))
	s.Add(s, big.NewInt(int64(iv.Days)))
	s.Mul(s, big.NewInt(day))
	return s.Add(s, big.NewInt(iv.Micros))
}
