// Command retention-bench measures real retention runs over a large expired backlog. It seeds a
// PostgreSQL database (once, kept as a template), then for each scenario clones it, starts
// convai-fake with a fixed latency, runs the retention binary against both and reports the
// throughput, the peak memory of the retention process, the time to its first request, the
// longest transaction it held open and the database statements it ran per chunk, with the CPU
// time of every party and, on request, a perf profile and the plans of the hot statements.
//
// scripts/bench.sh (make bench) builds the binaries, starts a throwaway PostgreSQL with the
// settings it needs and runs it; docs/BENCHMARKS.md explains each figure.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
