// Package exitcode lists the exit codes of the retention binary. They are part of its interface:
// Kubernetes maps them in the CronJob's podFailurePolicy, and operators page on them.
package exitcode

const (
	// OK: the run finished and everything selected is deleted, or there was nothing to do, or it
	// was a dry-run, or the deletion budget was reached.
	OK = 0
	// Partial: the run finished with some sessions failed.
	Partial = 1
	// Usage: a usage or configuration error, or the schema is missing or older than the binary:
	// nothing was done. audit check without --key exits so too, after printing UNVERIFIED: a
	// proof whose checkpoint signature was not checked proves nothing. So does a refusal of the
	// database that the operator is to fix: a missing grant (a run refused one mid-way has
	// printed its summary first, which says what it did) or a value that breaks a rule of the schema.
	Usage = 2
	// Locked: another run holds the lock.
	Locked = 3
	// KeyRejected: the API rejected the key.
	KeyRejected = 4
	// Fatal: any other fatal error (database unreachable, ...).
	Fatal = 5
	// Aborted: the safety cap (--abort-above, --abort-above-percent) stopped the run before it
	// sent anything; or policy apply refused a change whose new deletions exceed the caps.
	Aborted = 6
	// Interrupted by SIGINT.
	Interrupted = 130
	// Terminated by SIGTERM.
	Terminated = 143
)
