package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/job"
)

// options is the parsed command line.
type options struct {
	dbURL       string
	binDir      string
	outDir      string
	sessions    int
	characters  int
	scenarios   []string
	latency     time.Duration
	concurrency int
	chunkSize   int
	extra       []string
	prepareSQL  string
	primedSQL   string
	perf        bool
	explain     bool
	reseed      bool
	keep        bool
	jsonOut     string
	timeout     time.Duration
}

func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

const usageHead = `usage: retention-bench [flags]

Seeds PostgreSQL with an expired backlog and measures real runs of the retention binary against
convai-fake. Scenarios (--scenarios, default a,b,c,d):
  a  the endpoint answers after --latency (default 20ms): throughput against the limit
     concurrency x chunk-size / latency
  b  the endpoint answers at once: what the job and the database can do by themselves
  c  a later run: the whole seed deleted first (not measured), then 10,000 newly expired
     sessions: what a run costs over a long history
  d  a later run with nothing to do over the deleted seed
Scenarios of an app's own source, synced into retention.sessions first by every run:
  v  the README's view (conversations + messages, 5 per session), first run (compare with b)
  w  the view, a later run: the seed deleted first (not measured), then 10,000 newly expired
  x  the view, a later run with nothing new
  i  a table with a btree index on last_active_at, a later run: 10,000 new rows read incrementally
  t  a table without an index, a later run with nothing new: a full pass of a plain table
Every run reports throughput, peak RSS, time to the first request, the longest transaction and
statements per chunk. The server comes from --database-url, else BENCH_DATABASE_URL, else
TEST_DATABASE_URL; scripts/bench.sh starts one.

Flags:
`

// parseFlags reads args and the environment.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("retention-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	var scenarios, extra string
	fs.StringVar(&o.dbURL, "database-url", cmp.Or(getenv("BENCH_DATABASE_URL"), getenv("TEST_DATABASE_URL")),
		"PostgreSQL `URL` whose server the bench may create and drop databases on [$BENCH_DATABASE_URL, $TEST_DATABASE_URL]")
	fs.StringVar(&o.binDir, "bin", "bin", "`directory` holding the retention and convai-fake binaries")
	fs.StringVar(&o.outDir, "out", ".tmp/bench", "`directory` for logs, profiles, plans and results")
	fs.IntVar(&o.sessions, "sessions", 1_000_000, "expired sessions to seed")
	fs.IntVar(&o.characters, "characters", 1000, "characters the sessions are spread over, interleaved in time")
	fs.StringVar(&scenarios, "scenarios", "a,b,c,d", "comma-separated scenarios to run: a, b, c, d, v, w, x, i, t")
	fs.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency of the endpoint in scenario a")
	fs.IntVar(&o.concurrency, "concurrency", 8, "retention --concurrency")
	fs.IntVar(&o.chunkSize, "chunk-size", job.ChunkSizeDefault, "retention --chunk-size")
	fs.StringVar(&extra, "retention-flags", "", "more flags for retention run, space-separated, e.g. '--page-size 5000'")
	fs.StringVar(&o.prepareSQL, "prepare-sql", "", "SQL run on each scenario's database before its run, to try a change: an index, ANALYZE, a setting")
	fs.StringVar(&o.primedSQL, "primed-sql", "", "SQL run on the database of a later-run scenario (c, d, w, x, i, t) after its unmeasured first run, "+
		"before the measured one: e.g. 'VACUUM retention.sessions', what autovacuum does between a deployment's runs")
	fs.BoolVar(&o.perf, "perf", false, "record a CPU profile of the retention process with perf (needs perf on PATH)")
	fs.BoolVar(&o.explain, "explain", true, "show EXPLAIN (ANALYZE, BUFFERS) of the selection's pages, the claim and the record")
	fs.BoolVar(&o.reseed, "reseed", false, "seed again even if a seeded template of this size exists")
	fs.BoolVar(&o.keep, "keep", false, "keep each scenario's database after its run, for inspection")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this `file`")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest a single run may take before it is killed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, &cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q: retention-bench takes flags only", fs.Arg(0))
	}
	for s := range strings.SplitSeq(scenarios, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case s == "":
		case s != "a" && s != "b" && s != "c" && s != "d" && !isSourceScenario(s):
			return o, usagef("--scenarios: unknown scenario %q: want a, b, c, d, v, w, x, i or t", s)
		case !slices.Contains(o.scenarios, s):
			o.scenarios = append(o.scenarios, s)
		}
	}
	o.extra = strings.Fields(extra)
	switch {
	case strings.TrimSpace(o.dbURL) == "":
		return o, usagef("no server: give --database-url, or set BENCH_DATABASE_URL or TEST_DATABASE_URL (scripts/bench.sh starts a throwaway one)")
	case len(o.scenarios) == 0:
		return o, usagef("--scenarios %q names no scenario: want a, b or a,b", scenarios)
	case o.sessions < 1000:
		return o, usagef("--sessions %d: want at least 1000", o.sessions)
	case o.characters < 1 || o.characters > o.sessions:
		return o, usagef("--characters %d: want 1 to --sessions (%d)", o.characters, o.sessions)
	case o.latency <= 0:
		return o, usagef("--latency %v: want a positive duration, e.g. 20ms", o.latency)
	case o.concurrency < 1 || o.chunkSize < 1:
		return o, usagef("--concurrency and --chunk-size must be positive")
	case o.timeout <= 0:
		return o, usagef("--timeout %v: want a positive duration", o.timeout)
	}
	for _, f := range o.extra {
		for _, own := range []string{"rate", "concurrency", "chunk-size", "output", "dry-run"} {
			if f == "--"+own || f == "-"+own || strings.HasPrefix(f, "--"+own+"=") || strings.HasPrefix(f, "-"+own+"=") {
				return o, usagef("--retention-flags: %s is set by the bench itself; use the bench's own flag", f)
			}
		}
	}
	var err error
	if o.binDir, err = filepath.Abs(o.binDir); err != nil {
		return o, err
	}
	if o.outDir, err = filepath.Abs(o.outDir); err != nil {
		return o, err
	}
	return o, nil
}
