package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// The targets the figures are held against.
const (
	targetFraction   = 0.75   // of the endpoint-bound limit, scenario a
	targetThroughput = 25_000 // sessions per second, scenario b
	targetPGMicros   = 50     // PostgreSQL CPU per deleted session, scenarios a and b
	targetJobMicros  = 10     // the job's CPU per session, scenarios a and b
	targetLaterRunS  = 5      // scenario c: the whole run
	targetIdleRunS   = 2      // scenario d: a run with nothing to do
	targetRSSMiB     = 64
	targetFirstS     = 1.0
	targetLongestS   = 1.0
	targetStatements = 3.0
	// An app's own source (scenarios v, w, x, i).
	targetViewFraction = 0.7 // scenario v's throughput, of scenario b's in the same bench
	targetViewLaterS   = 10  // scenario w at 1M (90 s at 10M)
	targetViewIdleS    = 8   // scenario x at 1M
	targetIncrementalS = 5   // scenario i
)

func writeRun(w io.Writer, r *result) {
	sc := r.Scenario
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("== scenario %s: %d sessions, latency %v, concurrency %d, chunk %d, rate 0", sc.Name, r.Sessions, sc.Latency, sc.Concurrency, sc.ChunkSize)
	p("exit %d, status %s: selected %d, deleted %d, failed %d", r.ExitCode, r.Status, r.Selected, r.Deleted, r.Failed)
	p("requests %d (%.1f sessions each), most in flight %d", r.Requests, r.SessionsPerRequest, r.MaxInFlight)
	p("time: %.2fs process start to exit, %.2fs run (summary)", r.WallSeconds, r.RunSeconds)
	if y := r.Sync; y != nil {
		kind := "full pass"
		if !y.Full {
			kind = "incremental"
		}
		p("sync: %s, %d source rows read in %.2fs", kind, y.RowsRead, y.Seconds)
		if r.Deleted == 0 && r.CPU.Postgres >= 0 && y.RowsRead > 0 {
			p("  PostgreSQL CPU %.1f µs per source row (the run sent nothing: its CPU is the sync's)", r.CPU.Postgres/float64(y.RowsRead)*1e6)
		}
	}
	line := fmt.Sprintf("throughput: %.0f sessions/s over the whole process; %.0f/s steady (10%%-90%% of deletions)", r.Throughput, r.SteadyThroughput)
	if r.Limit > 0 {
		line += fmt.Sprintf("\n  = %.2f (steady %.2f) of the endpoint-bound limit %.0f/s", r.FractionOfLimit, r.SteadyFraction, r.Limit)
		if r.SessionsPerRequest > 0 {
			bound := float64(sc.Concurrency) * r.SessionsPerRequest / sc.Latency.Seconds()
			line += fmt.Sprintf("; with the chunks actually sent (%.1f sessions) the limit is %.0f/s, reached at %.2f", r.SessionsPerRequest, bound, r.Throughput/bound)
		}
	}
	p("%s", line)
	p("peak RSS: %.1f MiB (getrusage), %.1f MiB (largest /proc sample)", r.PeakRSSMiB, r.SampledRSSMiB)
	p("first request: %.3fs after the process started", r.FirstRequestS)
	p("longest transaction: %.3fs (%s: %s)", r.LongestTxS, orNone(r.LongestTxWhat), orNone(truncate(r.LongestTxSQL, 160)))
	p("database: %d transactions = %.2f per chunk; %s", r.Counts.Transactions, r.TransactionsPerChunk, statementsLine(r))
	if r.Counts.Method == methodStatements {
		writeStatements(w, r)
	}
	cpuLine := fmt.Sprintf("cpu: retention %.2fs (%.1f µs/session), convai-fake %.2fs, bench %.2fs", r.CPU.Retention,
		perSession(r.CPU.Retention, r.Deleted), r.CPU.Fake, r.CPU.Bench)
	if r.CPU.Postgres >= 0 {
		cpuLine += fmt.Sprintf(", postgres %.2fs (%.1f µs/session)", r.CPU.Postgres, perSession(r.CPU.Postgres, r.Deleted))
	}
	if r.CPU.Capacity > 0 {
		ours := r.CPU.Retention + r.CPU.Fake + r.CPU.Bench + max(r.CPU.Postgres, 0)
		cpuLine += fmt.Sprintf("\n  machine busy %.0f%% of %.1f CPU-seconds; processes outside the bench %.2fs", 100*r.CPU.Machine/r.CPU.Capacity,
			r.CPU.Capacity, max(r.CPU.Machine-ours, 0))
	}
	p("%s", cpuLine)
	if r.PerfTop != "" {
		p("profile of the retention process (perf, %% of its samples; full report %s):\n%s", r.Perf, r.PerfTop)
	}
	p("log: %s", r.Log)
}

func statementsLine(r *result) string {
	if r.Counts.Method != methodStatements {
		return "statements not counted (pg_stat_statements is not loaded); transactions stand for them"
	}
	return fmt.Sprintf("%d statements = %.2f per chunk (pg_stat_statements)", r.Counts.Statements, r.StatementsPerChunk)
}

func writeStatements(w io.Writer, r *result) {
	kinds := r.Counts.perKind()
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(kinds[b].TotalMs - kinds[a].TotalMs) })
	fmt.Fprintf(w, "  %-12s %9s %9s %9s %9s %10s\n", "kind", "calls", "/chunk", "mean ms", "max ms", "total s")
	for _, k := range names {
		s := kinds[k]
		fmt.Fprintf(w, "  %-12s %9d %9.3f %9.3f %9.1f %10.2f\n", k, s.Calls, float64(s.Calls)/float64(max(r.Requests, 1)), s.MeanMs, s.MaxMs, s.TotalMs/1000)
	}
	fmt.Fprintf(w, "  slowest statements by total time:\n")
	for i, s := range r.Counts.Top {
		if i == 6 {
			break
		}
		fmt.Fprintf(w, "  %8d calls %8.3f ms mean %8.1f ms max  [%s] %s\n", s.Calls, s.MeanMs, s.MaxMs, s.Kind, truncate(s.Query, 110))
	}
}

func writePlans(w io.Writer, plans []plan) {
	for _, pl := range plans {
		fmt.Fprintf(w, "\n== EXPLAIN (ANALYZE, BUFFERS): %s\n%s\n", pl.Label, pl.Plan)
	}
}

// writeTargets holds every run against the targets.
func writeTargets(w io.Writer, res *results) {
	fmt.Fprintf(w, "\n== targets (%d sessions over %d characters", res.Sessions, res.Chars)
	if res.Sessions < 1_000_000 {
		fmt.Fprintf(w, "; SMALL SCALE: the targets are stated at 1M and 10M")
	}
	fmt.Fprintf(w, ")\n")
	check := func(label string, ok bool, figure string) {
		mark := "met"
		if !ok {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %-46s %-7s %s\n", label, mark, figure)
	}
	// wall checks a run's time from process start to exit against limit seconds; the label is
	// label, the limit, then after.
	wall := func(label, after string, r *result, limit int) {
		check(fmt.Sprintf("%s <= %ds%s", label, limit, after), r.WallSeconds <= float64(limit),
			fmt.Sprintf("%.2fs process start to exit", r.WallSeconds))
	}
	for _, r := range res.Runs {
		sc := r.Scenario
		switch sc.Name {
		case "a":
			check(fmt.Sprintf("A throughput >= %.2f of limit (%s)", targetFraction, "run "+sc.Name), r.FractionOfLimit >= targetFraction,
				fmt.Sprintf("%.2f: %.0f of %.0f sessions/s (steady %.2f)", r.FractionOfLimit, r.Throughput, r.Limit, r.SteadyFraction))
		case "b":
			check(fmt.Sprintf("B throughput at latency 0 >= %d/s", targetThroughput), r.Throughput >= targetThroughput,
				fmt.Sprintf("%.0f sessions/s (steady %.0f)", r.Throughput, r.SteadyThroughput))
		case "c":
			wall(fmt.Sprintf("F later run, %d new over the history,", newSessions), "", r, targetLaterRunS)
		case "d":
			wall("F later run with nothing to do", "", r, targetIdleRunS)
		case "v":
			if b := runOf(res, "b"); b != nil && b.Throughput > 0 {
				check(fmt.Sprintf("S view first run >= %.1f of b's throughput", targetViewFraction), r.Throughput >= targetViewFraction*b.Throughput,
					fmt.Sprintf("%.2f: %.0f of %.0f sessions/s", r.Throughput/b.Throughput, r.Throughput, b.Throughput))
			}
		case "w":
			wall(fmt.Sprintf("S view later run, %d new,", newSessions), " at 1M", r, targetViewLaterS)
		case "x":
			wall("S view later run, nothing new,", " at 1M", r, targetViewIdleS)
		case "i":
			wall(fmt.Sprintf("S incremental table, %d new,", newSessions), "", r, targetIncrementalS)
		}
		if sc.Name == "a" || sc.Name == "b" {
			pg, job := perSession(r.CPU.Postgres, r.Deleted), perSession(r.CPU.Retention, r.Deleted)
			check(fmt.Sprintf("G PostgreSQL CPU <= %d µs/session (run %s)", targetPGMicros, sc.Name), r.CPU.Postgres >= 0 && pg <= targetPGMicros,
				fmt.Sprintf("%.1f µs/session", pg))
			check(fmt.Sprintf("G job CPU <= %d µs/session (run %s)", targetJobMicros, sc.Name), job <= targetJobMicros,
				fmt.Sprintf("%.1f µs/session", job))
		}
	}
	for _, r := range res.Runs {
		n := "run " + r.Scenario.Name
		if r.Scenario.Name == "d" || r.Scenario.Name == "x" || r.Scenario.Name == "t" {
			continue // nothing to send: no first request, no chunk
		}
		check(fmt.Sprintf("C peak RSS <= %d MiB (%s)", targetRSSMiB, n), r.PeakRSSMiB <= targetRSSMiB, fmt.Sprintf("%.1f MiB", r.PeakRSSMiB))
		check(fmt.Sprintf("D first request <= %.0fs (%s)", targetFirstS, n), r.FirstRequestS >= 0 && r.FirstRequestS <= targetFirstS, fmt.Sprintf("%.3fs", r.FirstRequestS))
		check(fmt.Sprintf("E longest transaction <= %.0fs (%s)", targetLongestS, n), r.LongestTxS <= targetLongestS,
			fmt.Sprintf("%.3fs %s", r.LongestTxS, truncate(r.LongestTxSQL, 60)))
		per, what := r.StatementsPerChunk, "statements"
		if r.Counts.Method != methodStatements {
			per, what = r.TransactionsPerChunk, "transactions"
		}
		check(fmt.Sprintf("E statements per chunk <= %.0f (%s)", targetStatements, n), per <= targetStatements, fmt.Sprintf("%.2f %s per chunk", per, what))
	}
}

// runOf returns the run of scenario name, nil when there is none.
func runOf(res *results, name string) *result {
	for _, r := range res.Runs {
		if r.Scenario.Name == name {
			return r
		}
	}
	return nil
}

func perSession(seconds float64, n int64) float64 {
	if n == 0 {
		return 0
	}
	return seconds / float64(n) * 1e6
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
