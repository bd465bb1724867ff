package main

import (
	"fmt"
	"io"
	"strings"
)

// helpText is "retention help": the commands, the run flags (from the flag set itself, so it
// cannot drift), the environment and the exit codes.
func helpText() string {
	var b strings.Builder
	b.WriteString(`retention deletes expired Convai chat sessions and records every outcome in PostgreSQL.

usage:
  retention migrate            create or update the retention schema (safe to repeat)
  retention run [flags]        delete the expired sessions; --dry-run only shows them
  retention sync [flags]       read the app's source (--source) once into retention.sessions, which
                               every other command reads; runs of such a source sync first
  retention schedule [flags]   run at each tick of --cron, serving /metrics, /healthz, /readyz
                               (run flags but --dry-run; see retention schedule --help)
  retention report [flags]     the compliance report of a period: deletions, lag, backlog, overdue,
                               runs (table, csv, json or html; see retention report --help); or
                               with --session ID, every attempt on one session, or why none
                               or with --policies-as-of TIME, the policies in force then, with versions
  retention policy export      print the policies as YAML (--out FILE)
  retention policy apply -f F  make the policies equal to file F in one transaction, printing the plan:
                               each change and the sessions it makes due now and within 7 days;
                               --dry-run changes nothing; new deletions above --max-due-share (default
                               10% of the source) or --abort-above(-percent) are refused with exit 6
                               unless --confirm N gives their count; --actor, --reason are recorded
  retention plan               what the next run would delete per character, and whether it trips the cap
  retention audit verify       check the results trail: rebuild the Merkle log from the rows, check
                               its hashes, roots and checkpoints (and the v1 chain); exit 1 if anything
                               was edited, removed or inserted (see retention audit --help)
  retention audit prove        the inclusion proof of one session's deletion (--character, --session) or of an end user's memory erasure (--end-user)
  retention audit check        verify such a proof offline against a signed checkpoint (--proof, --key; without --key: UNVERIFIED)
  retention audit keygen       make a checkpoint signing key (--out FILE; verifier key on stdout)
  retention verify [flags]     list each character's sessions at Convai and check that the recorded
                               deletions are gone (--character, --since, --sample N); a session
                               found present is sent again by the next run (see retention verify --help)
  retention discover [flags]   add to retention.sessions the sessions Convai has that the app never
                               stored (last activity from their details); --dry-run only counts them
  retention erase [flags]      file an erasure request: --character C [--session S] --reason R [--due 72h];
                               every run sends requested sessions first, whatever their age or policy
                               and never capped; an active hold wins (see retention erase --help);
                               --end-user U: every session of that end user and their long-term memory
  retention version            print the version
  retention help [COMMAND]     print this help, or one command's (its flags, the environment, the exit codes)

run flags (a flag wins over its environment variable, which wins over the default):
`)
	usageOf(&b, runFlags)
	b.WriteString("\n" + helpFooter)
	return b.String()
}

// helpFooter is the environment and the exit codes: the end of "retention help" and of every
// command's own help, so that none of them leaves the reader without them.
const helpFooter = `environment:
  DATABASE_URL         PostgreSQL connection string (required), or
  DATABASE_URL_FILE    a file holding it, e.g. a mounted Kubernetes secret; set one of the two.
                       Use sslmode=verify-full for a database on another machine: with disable,
                       allow or prefer (the default) the job warns loudly at start
  CONVAI_API_KEY       the API key (required for a real run; never a flag), or
  CONVAI_API_KEY_FILE  a file holding it, e.g. a mounted Kubernetes secret (a regular file of
                       at most 4 KiB; a dry-run never reads it)
  CONVAI_API_URL       the API root (default https://api.convai.com); plain http:// only to this
                       machine, unless --allow-insecure-url
  CONVAI_MEMORY_API_URL  the root of the long-term memory endpoints (default CONVAI_API_URL), same rules
  SOURCE_DATABASE_URL  the database the source (--source) is in, read-only (a replica will do), or
  SOURCE_DATABASE_URL_FILE  a file holding it; default: the retention database
  LOG_LEVEL            debug, info, warn or error; logs go to stderr, JSON unless a terminal
  RETENTION_CHECKPOINT_KEY_FILE  the note key that signs each run's checkpoint (tree size and root)
  RETENTION_ACTOR      who runs retention policy apply (recorded in retention.policy_history), or
                       files an erasure request (its requested_by)
  RETENTION_CHECKPOINT_DIR       a directory outside the database for the signed checkpoints
                                 (run-ID.note, latest.note); needs the key

exit codes:
  0    finished: everything selected is deleted, or nothing to do, or a dry-run, or the budget was reached
  1    finished with some sessions failed; or audit verify found the trail broken, or audit check refused a proof;
       or verify found a deleted session still present at Convai
  2    usage or configuration error, or the schema is missing or old (run retention migrate), or an invalid
       policy file (every mistake, each with its line); nothing done. Also audit check without --key:
       UNVERIFIED; a login refused a privilege (the role of sql/roles.sql to use is named; a run refused
       one mid-way has printed its summary first, which says what it did); a value written to a table
       an operator writes that breaks a rule of the schema (its column and the rule are named)
  3    another run holds the lock
  4    the API rejected the key
  5    any other fatal error (database unreachable, a list verify could not read, ...)
  6    the safety cap stopped the run before it sent anything its policies selected (--abort-above,
       --abort-above-percent; erasure requests are still sent);
       or policy apply refused changes whose new deletions exceed a cap (nothing changed; --confirm N applies)
  130  interrupted by SIGINT
  143  terminated by SIGTERM
`

// withFooter returns help followed by the environment and the exit codes.
func withFooter(help func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		help(w)
		fmt.Fprint(w, "\n"+helpFooter)
	}
}
