package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/cli"
)

// keyEnv is the environment variable holding the key the fake accepts.
const keyEnv = "CONVAI_API_KEY"

// config is what the flags and the environment say.
type config struct {
	listen   string
	logLevel slog.Level
	opts     convaitest.Options
	// sessions is the file the sessions the fake starts with are read from; empty for none.
	sessions string
	// memories is the file the end users and memories the fake starts with are read from;
	// empty for none.
	memories string
}

func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// parseFlags reads args and the environment. It returns flag.ErrHelp for -h.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("convai-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s=KEY convai-fake [flags]\n\nServes fake Convai chat-history endpoints (delete, list and details) and long-term memory\nendpoints (memory list, delete and delete-all; end user delete).\n\nFlags:\n", keyEnv)
		fs.PrintDefaults()
	}
	var (
		cfg       config
		o         = &cfg.opts
		rejectIDs string
		foreign   string
		logLevel  string
	)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8089", "`address` to listen on; port 0 picks a free port")
	fs.DurationVar(&o.Latency, "latency", 0, "added to every request")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "fraction of requests answered 500, 502 or 503")
	fs.Float64Var(&o.RateLimitRate, "rate-limit-rate", 0, "fraction of requests answered 429")
	fs.DurationVar(&o.RetryAfter, "retry-after", time.Second, "Retry-After sent with 429 and 503, rounded up to seconds")
	fs.Float64Var(&o.HangRate, "hang-rate", 0, "fraction of requests that hang until the client goes away")
	fs.DurationVar(&o.HangFor, "hang-for", 0, "if set, a hang ends after this long with 504")
	fs.Float64Var(&o.DropRate, "drop-rate", 0, "fraction of requests whose connection is closed without an answer")
	fs.Float64Var(&o.UnconfirmedRate, "unconfirmed-rate", 0, "fraction of requests answered 200 without a confirmation")
	fs.Float64Var(&o.LostAnswerRate, "lost-answer-rate", 0, "fraction of requests deleted, then closed without an answer")
	fs.StringVar(&rejectIDs, "reject-ids", "", "comma-separated session `IDs` answered 400")
	fs.IntVar(&o.MaxIDs, "max-ids", 0, "most session IDs per request, 0 for no limit")
	fs.BoolVar(&o.RefuseUnknown, "refuse-unknown", false, "answer 404 to a delete naming a session the fake does not hold (never seeded, or deleted already)")
	fs.StringVar(&cfg.sessions, "sessions", "", "JSON `file` of the sessions the fake holds: {\"CHARACTER\": {\"SESSION\": [\"RFC 3339 interaction time\", ...]}}")
	fs.StringVar(&cfg.memories, "memories", "", "JSON `file` of the end users and memories the fake holds: "+
		"{\"end_users\": [\"USER\"], \"memories\": {\"CHARACTER\": {\"USER\": [{\"id\": \"M\", \"memory\": \"TEXT\", \"session_id\": \"S\", \"created_at\": \"RFC 3339\"}]}}}")
	fs.DurationVar(&o.MemoryDeleteDelay, "memory-delete-delay", 0, "how long a memory delete-all takes to complete (it answers \"in progress\" at once)")
	fs.BoolVar(&o.StuckDeleteAll, "stuck-delete-all", false, "a memory delete-all is accepted and never completes")
	fs.StringVar(&foreign, "foreign-characters", "", "comma-separated character `IDs` the key does not own: the memory endpoints answer 403")
	fs.BoolVar(&o.NoMemory, "no-memory", false, "the memory endpoints answer 404, as for an account without long-term memory")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the fault choice")
	fs.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (default $LOG_LEVEL, else info); requests log at debug")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, &cli.UsageError{Err: err, Shown: true} // the flag package printed it with the usage
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q: convai-fake takes flags only", fs.Arg(0))
	}
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	for id := range strings.SplitSeq(rejectIDs, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.RejectIDs = append(o.RejectIDs, id)
		}
	}
	for id := range strings.SplitSeq(foreign, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.ForeignCharacters = append(o.ForeignCharacters, id)
		}
	}
	level := cmp.Or(strings.TrimSpace(logLevel), strings.TrimSpace(getenv("LOG_LEVEL")), "info")
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		return cfg, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	o.APIKey = getenv(keyEnv)
	if strings.TrimSpace(o.APIKey) == "" {
		return cfg, usagef("%s is not set: export the key the fake should accept", keyEnv)
	}
	return cfg, nil
}

// check validates the values of the flags.
func (c *config) check() error {
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return usagef("--listen %q: want host:port, e.g. 127.0.0.1:8089 or 127.0.0.1:0", c.listen)
	}
	o := c.opts
	rates := []struct {
		name string
		v    float64
	}{
		{"--fail-rate", o.FailRate}, {"--rate-limit-rate", o.RateLimitRate}, {"--hang-rate", o.HangRate},
		{"--drop-rate", o.DropRate}, {"--unconfirmed-rate", o.UnconfirmedRate}, {"--lost-answer-rate", o.LostAnswerRate},
	}
	sum := 0.0
	for _, r := range rates {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return usagef("%s %v: must be between 0 and 1", r.name, r.v)
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		return usagef("the fault rates add up to %v: their sum must not exceed 1", sum)
	}
	switch {
	case o.Latency < 0:
		return usagef("--latency %v: must not be negative", o.Latency)
	case o.RetryAfter <= 0:
		return usagef("--retry-after %v: must be positive, e.g. 1s", o.RetryAfter)
	case o.HangFor < 0:
		return usagef("--hang-for %v: must not be negative; 0 hangs until the client goes away", o.HangFor)
	case o.MaxIDs < 0:
		return usagef("--max-ids %d: must not be negative; 0 means no limit", o.MaxIDs)
	case o.MemoryDeleteDelay < 0:
		return usagef("--memory-delete-delay %v: must not be negative; 0 completes a delete-all by the next request", o.MemoryDeleteDelay)
	}
	return nil
}
