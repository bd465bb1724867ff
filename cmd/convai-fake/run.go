package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/cli"
)

// shutdownTimeout bounds the wait for requests in progress when the fake stops.
const shutdownTimeout = 5 * time.Second

// run serves the fake until ctx is done, then shuts down cleanly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	cfg.opts.Logger = logger
	fake := convaitest.New(cfg.opts)
	defer fake.Close()
	if cfg.sessions != "" {
		seed, err := readSeed(cfg.sessions)
		if err != nil {
			return err
		}
		fake.AddSessions(seed)
	}
	if cfg.memories != "" {
		seed, err := readMemorySeed(cfg.memories)
		if err != nil {
			return err
		}
		if err := fake.AddMemories(seed); err != nil {
			return usagef("--memories %s: %v", cfg.memories, err)
		}
	}

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{
		Handler:           routes(fake),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	if _, err := fmt.Fprintf(stdout, "convai-fake listening on http://%s\n", addr); err != nil {
		_ = srv.Close()
		<-served
		return fmt.Errorf("write to stdout: %w", err)
	}
	o := cfg.opts
	logger.Info("listening", "addr", addr, "latency", o.Latency, "fail_rate", o.FailRate,
		"rate_limit_rate", o.RateLimitRate, "retry_after", o.RetryAfter, "hang_rate", o.HangRate,
		"hang_for", o.HangFor, "drop_rate", o.DropRate, "unconfirmed_rate", o.UnconfirmedRate,
		"lost_answer_rate", o.LostAnswerRate, "reject_ids", len(o.RejectIDs), "max_ids", o.MaxIDs,
		"memory_delete_delay", o.MemoryDeleteDelay, "stuck_delete_all", o.StuckDeleteAll,
		"foreign_characters", len(o.ForeignCharacters), "no_memory", o.NoMemory, "seed", o.Seed)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Release hung requests first, or Shutdown would wait on them.
	fake.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		<-served
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	st := fake.Stats()
	logger.Info("stopped", "requests", st.Requests, "deleted", st.Deleted, "max_in_flight", st.MaxInFlight)
	return nil
}

// deletedReport is the body of GET /_fake/deleted.
type deletedReport struct {
	Deleted map[string][]string `json:"deleted"`
	Total   int                 `json:"total"`
}

// routes serves the fake, plus its state for scripts.
func routes(fake *convaitest.Fake) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_fake/deleted", func(w http.ResponseWriter, _ *http.Request) {
		d := fake.Deleted()
		total := 0
		for _, ids := range d {
			total += len(ids)
		}
		writeJSON(w, deletedReport{Deleted: d, Total: total})
	})
	mux.HandleFunc("GET /_fake/sessions", func(w http.ResponseWriter, r *http.Request) {
		char := r.URL.Query().Get("character")
		writeJSON(w, map[string]any{"character": char, "sessions": fake.Sessions(char)})
	})
	mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, fake.Stats())
	})
	memoryRoutes(mux, fake)
	mux.Handle("/", fake)
	return mux
}

// readSeed reads the sessions file of --sessions.
func readSeed(path string) (convaitest.Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--sessions: %v", err)
	}
	var seed convaitest.Seed
	if err := json.Unmarshal(data, &seed); err != nil {
		return nil, usagef("--sessions %s: %v; want {\"CHARACTER\": {\"SESSION\": [\"2026-01-02T03:04:05Z\"]}}", path, err)
	}
	return seed, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// command is the binary's one command, in the shape every binary's commands share.
func command(getenv func(string) string, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{Name: "convai-fake", Run: func(ctx context.Context, args []string) error {
		return run(ctx, args, getenv, stdout, stderr)
	}}
}

// exitCode maps the error of run to the exit code, and reports it on stderr: 0 for none or
// -h (the flag package printed the help), 2 for bad input, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	p := &cli.Program{Name: "convai-fake", Stderr: stderr}
	return p.Exit(nil, err)
}
