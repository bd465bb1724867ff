package policytest

import "github.com/convai-retention/retention/policy"

// MaxAgeCase is one max_age as a policy file or SQL would write it, the interval PostgreSQL
// reads it as, and the fault policy.CheckMaxAge finds in it. The database's test inserts each
// Text into retention.policies: the table must refuse exactly the cases with a fault.
type MaxAgeCase struct {
	Text     string
	Interval policy.Interval
	Fault    policy.MaxAgeFault
}

const (
	hour = int64(3600 * 1_000_000)
	sec  = int64(1_000_000)
)

// MaxAgeCases are the bounds of max_age and their neighbours.
var MaxAgeCases = []MaxAgeCase{
	{"30 days", policy.Interval{Days: 30}, policy.MaxAgeOK},
	{"1 hour", policy.Interval{Micros: hour}, policy.MaxAgeOK},
	{"01:00:00", policy.Interval{Micros: hour}, policy.MaxAgeOK},
	{"3600", policy.Interval{Micros: hour}, policy.MaxAgeOK},
	{"200 years", policy.Interval{Months: 2400}, policy.MaxAgeOK},
	{"199 years 11 mons 30 days", policy.Interval{Months: 2399, Days: 30}, policy.MaxAgeOK},
	{"1 mon 2 days 25:30:00.5", policy.Interval{Months: 1, Days: 2, Micros: 25*hour + 30*60*sec + sec/2}, policy.MaxAgeOK},
	{"P1Y2M", policy.Interval{Months: 14}, policy.MaxAgeOK},
	{"0", policy.Interval{}, policy.MaxAgeNotPositive},
	{"-1 day", policy.Interval{Days: -1}, policy.MaxAgeNotPositive},
	{"1 day -50:00:00", policy.Interval{Days: 1, Micros: -50 * hour}, policy.MaxAgeNotPositive},
	{"30", policy.Interval{Micros: 30 * sec}, policy.MaxAgeUnderMin},
	{"10 minutes", policy.Interval{Micros: 600 * sec}, policy.MaxAgeUnderMin},
	{"00:59:59.999999", policy.Interval{Micros: hour - 1}, policy.MaxAgeUnderMin},
	{"1 day -23:30:00", policy.Interval{Days: 1, Micros: -23*hour - 30*60*sec}, policy.MaxAgeUnderMin},
	{"200 years 1 second", policy.Interval{Months: 2400, Micros: sec}, policy.MaxAgeOverMax},
	{"201 years", policy.Interval{Months: 2412}, policy.MaxAgeOverMax},
	{"1 mon -2 days", policy.Interval{Months: 1, Days: -2}, policy.MaxAgeNegativePart},
	{"2 days -1 hour", policy.Interval{Days: 2, Micros: -hour}, policy.MaxAgeNegativePart},
	{"-1 mon 40 days", policy.Interval{Months: -1, Days: 40}, policy.MaxAgeNegativePart},
}
