package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/internal/proccpu"
)

// scenario is one configuration of a run.
type scenario struct {
	Name        string        `json:"name"`
	Latency     time.Duration `json:"latency_ns"`
	Concurrency int           `json:"concurrency"`
	ChunkSize   int           `json:"chunk_size"`
}

// limit is the endpoint-bound throughput, concurrency x chunk-size / latency sessions per second;
// 0 when the endpoint answers at once.
func (s scenario) limit() float64 {
	if s.Latency <= 0 {
		return 0
	}
	return float64(s.Concurrency*s.ChunkSize) / s.Latency.Seconds()
}

// Main runs the bench and returns the exit code: 0 when every run finished (targets met or
// not: the report says), 1 when a run failed, 2 for bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	p := &cli.Program{Name: "retention-bench", Stdout: stdout, Stderr: stderr}
	return p.Run(ctx, &cli.Command{Name: "retention-bench", Run: func(ctx context.Context, args []string) error {
		o, err := parseFlags(args, getenv, stderr)
		if err != nil {
			return err // -h: the flag package printed the help; exit 0
		}
		b := &bench{o: o, stdout: stdout, stderr: stderr}
		return b.run(ctx)
	}}, args)
}

// bench is one invocation.
type bench struct {
	o              options
	stdout, stderr io.Writer
	srv            *server
	counter        *statementCounter
	results        results
}

// results is everything the bench measured, as written by --json.
type results struct {
	Machine  machine   `json:"machine"`
	Sessions int       `json:"sessions"`
	Chars    int       `json:"characters"`
	Seed     seedInfo  `json:"seed"`
	Runs     []*result `json:"runs"`
	Plans    []plan    `json:"plans,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Postgres  string `json:"postgres"`
	Started   string `json:"started"`
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "retention-bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	o := b.o
	for _, bin := range []string{"retention", "convai-fake"} {
		if _, err := os.Stat(filepath.Join(o.binDir, bin)); err != nil {
			return usagef("%s not found in %s: run make build (or scripts/bench.sh, which builds them)", bin, o.binDir)
		}
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	srv, err := connectServer(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer srv.close()
	b.srv = srv
	b.counter = newStatementCounter(ctx, srv.admin)
	b.results = results{Sessions: o.sessions, Chars: o.characters,
		Machine: machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now().UTC().Format(time.RFC3339)}}
	_ = srv.admin.QueryRow(ctx, "SHOW server_version").Scan(&b.results.Machine.Postgres)
	b.logf("server PostgreSQL %s; statements counted with %s", b.results.Machine.Postgres, b.counter.method)

	seed, err := srv.seed(ctx, b.logf, o.sessions, o.characters, o.reseed)
	b.results.Seed = seed
	if err != nil {
		return err
	}
	for _, name := range o.scenarios {
		sc := scenario{Name: name, Concurrency: o.concurrency, ChunkSize: o.chunkSize}
		if name == "a" {
			sc.Latency = o.latency
		}
		r, err := b.runScenario(ctx, sc, seed.Name)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		b.results.Runs = append(b.results.Runs, r)
		writeRun(b.stdout, r)
	}
	if o.explain {
		plans, err := b.plans(ctx, seed.Name)
		if err != nil {
			return err
		}
		b.results.Plans = plans
		writePlans(b.stdout, plans)
	}
	writeTargets(b.stdout, &b.results)
	if o.jsonOut != "" {
		out, err := json.MarshalIndent(&b.results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// newSessions is how many newly expired sessions scenario c adds after the history is deleted.
const newSessions = 10_000

// prime runs one unmeasured run that deletes the whole seed, then for scenario c inserts
// newSessions newly expired sessions. It returns how many sessions the measured run will find.
func (b *bench) prime(ctx context.Context, sc scenario, dbURL, apiURL string) (int, error) {
	b.logf("scenario %s: deleting the whole seed first (not measured)", sc.Name)
	cmd := exec.CommandContext(ctx, filepath.Join(b.o.binDir, "retention"), "run", "--rate", "0",
		"--concurrency", strconv.Itoa(sc.Concurrency), "--chunk-size", strconv.Itoa(sc.ChunkSize), "--format", "json")
	cmd.Env = childEnv("DATABASE_URL="+dbURL, "CONVAI_API_URL="+apiURL, "CONVAI_API_KEY="+benchKey, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("priming run: %w: %s", err, truncate(string(out), 400))
	}
	if sc.Name == "d" {
		return 0, nil
	}
	err := execOn(ctx, dbURL, fmt.Sprintf(`
		INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		SELECT 'new-' || (i %% 100), 'new-session-' || i, now() - interval '3650 days' + i * interval '1 millisecond'
		FROM generate_series(1, %d) AS i;
		ANALYZE retention.sessions`, newSessions))
	return newSessions, err
}

// plans explains the hot statements on a fresh clone of the seed.
func (b *bench) plans(ctx context.Context, seed string) ([]plan, error) {
	name := "retention_bench_plans"
	b.logf("explaining the selection, claim and record on a fresh clone")
	if err := b.srv.clone(ctx, name, seed); err != nil {
		return nil, err
	}
	defer b.srv.drop(context.WithoutCancel(ctx), name) //nolint:errcheck // a leftover is dropped by the next clone
	u, err := b.srv.urlFor(name)
	if err != nil {
		return nil, err
	}
	return explain(ctx, u, b.o.chunkSize)
}

// result is what one run measured.
type result struct {
	Scenario scenario `json:"scenario"`
	Sessions int      `json:"sessions"`
	ExitCode int      `json:"exit_code"`
	Status   string   `json:"status"`
	Selected int64    `json:"selected"`
	Deleted  int64    `json:"deleted"`
	Failed   int64    `json:"failed"`
	// Requests and SessionsPerRequest come from the fake.
	Requests           int     `json:"requests"`
	SessionsPerRequest float64 `json:"sessions_per_request"`
	MaxInFlight        int     `json:"max_in_flight"`
	// WallSeconds is from process start to exit; RunSeconds the run's own duration (its
	// summary); SteadySeconds the time between 10% and 90% of the deletions, as the fake saw them.
	WallSeconds      float64 `json:"wall_seconds"`
	RunSeconds       float64 `json:"run_seconds"`
	Throughput       float64 `json:"sessions_per_second"`
	SteadyThroughput float64 `json:"steady_sessions_per_second"`
	Limit            float64 `json:"limit_sessions_per_second"`
	FractionOfLimit  float64 `json:"fraction_of_limit"`
	SteadyFraction   float64 `json:"steady_fraction_of_limit"`
	// PeakRSS is the process's maximum resident set (getrusage); SampledRSS the largest /proc
	// reading every 50ms.
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	SampledRSSMiB float64 `json:"sampled_rss_mib"`
	FirstRequestS float64 `json:"first_request_seconds"`
	LongestTxS    float64 `json:"longest_transaction_seconds"`
	LongestTxSQL  string  `json:"longest_transaction_query"`
	LongestTxWhat string  `json:"longest_transaction_state"`
	MaxBackends   int     `json:"max_backends"`
	Counts        *counts `json:"statements"`
	// Per chunk: the fake's requests stand for chunks (no retries or splits in these runs).
	StatementsPerChunk   float64 `json:"statements_per_chunk"`
	TransactionsPerChunk float64 `json:"transactions_per_chunk"`
	CPU                  cpu     `json:"cpu_seconds"`
	Perf                 string  `json:"perf_report,omitempty"`
	PerfTop              string  `json:"perf_top,omitempty"`
	Log                  string  `json:"log"`
	// Sync is the sync of an app's source the run started with (scenarios v, w, x, i, t).
	Sync *syncResult `json:"sync,omitempty"`
}

// syncResult is what the run's sync reported.
type syncResult struct {
	Full     bool    `json:"full_pass"`
	RowsRead int64   `json:"rows_read"`
	Seconds  float64 `json:"seconds"`
}

// cpu is where the CPU time of a run went, in seconds.
type cpu struct {
	Retention float64 `json:"retention"`
	Postgres  float64 `json:"postgres"` // -1 when the server is not a local process tree
	Fake      float64 `json:"convai_fake"`
	Bench     float64 `json:"bench"`
	Machine   float64 `json:"machine_busy"` // every process on the machine
	Capacity  float64 `json:"machine_capacity"`
}

// runScenario clones the seed, runs retention against a fresh fake and measures.
func (b *bench) runScenario(ctx context.Context, sc scenario, seed string) (*result, error) {
	o := b.o
	dbName := "retention_bench_" + sc.Name
	b.logf("scenario %s: cloning %s into %s", sc.Name, seed, dbName)
	if err := b.srv.clone(ctx, dbName, seed); err != nil {
		return nil, err
	}
	if !o.keep {
		defer b.srv.drop(context.WithoutCancel(ctx), dbName) //nolint:errcheck // a leftover is dropped by the next clone
	}
	dbURL, err := b.srv.urlFor(dbName)
	if err != nil {
		return nil, err
	}
	if isSourceScenario(sc.Name) {
		b.logf("scenario %s: moving the seed into the app's source %s (not measured)", sc.Name, sourceScenarios[sc.Name])
		if err := execOn(ctx, dbURL, sourceSQL(sc.Name)); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	if o.prepareSQL != "" {
		if err := execOn(ctx, dbURL, o.prepareSQL); err != nil {
			return nil, fmt.Errorf("--prepare-sql: %w", err)
		}
	}
	var oid uint32
	if err := b.srv.admin.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", dbName).Scan(&oid); err != nil {
		return nil, err
	}

	f, err := startFake(ctx, o.binDir, sc.Latency, filepath.Join(o.outDir, "convai-fake-"+sc.Name+".log"))
	if err != nil {
		return nil, err
	}
	fakeStopped := false
	defer func() {
		if !fakeStopped {
			f.stop()
		}
	}()
	sessions := o.sessions
	if sc.Name != "v" && isSourceScenario(sc.Name) {
		if sessions, err = b.primeSource(ctx, sc, dbURL, f.url); err != nil {
			return nil, fmt.Errorf("prime: %w", err)
		}
	}
	if sc.Name == "c" || sc.Name == "d" {
		// A later run: the whole seed is deleted first (not measured), then scenario c adds
		// newSessions newly expired ones and d nothing.
		if sessions, err = b.prime(ctx, sc, dbURL, f.url); err != nil {
			return nil, fmt.Errorf("prime: %w", err)
		}
	}
	if o.primedSQL != "" && (sc.Name == "c" || sc.Name == "d" || (sc.Name != "v" && isSourceScenario(sc.Name))) {
		b.logf("scenario %s: --primed-sql (not measured)", sc.Name)
		if err := execOn(ctx, dbURL, o.primedSQL); err != nil {
			return nil, fmt.Errorf("--primed-sql: %w", err)
		}
	}
	cnt, err := b.counter.reset(ctx, oid)
	if err != nil {
		return nil, err
	}

	r := &result{Scenario: sc, Sessions: sessions, Limit: sc.limit(), Log: filepath.Join(o.outDir, "retention-"+sc.Name+".log")}
	args := []string{"run", "--rate", "0", "--concurrency", strconv.Itoa(sc.Concurrency),
		"--chunk-size", strconv.Itoa(sc.ChunkSize), "--format", "json"}
	if isSourceScenario(sc.Name) {
		args = append(args, "--source", sourceScenarios[sc.Name])
	}
	args = append(args, o.extra...)
	logFile, err := os.Create(r.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var summary struct {
		Status          string  `json:"status"`
		Selected        int64   `json:"selected"`
		Deleted         int64   `json:"deleted"`
		Failed          int64   `json:"failed"`
		DurationSeconds float64 `json:"duration_seconds"`
		Sync            *struct {
			Full       bool      `json:"full_pass"`
			RowsRead   int64     `json:"rows_read"`
			StartedAt  time.Time `json:"started_at"`
			FinishedAt time.Time `json:"finished_at"`
		} `json:"sync"`
	}
	stdoutPath := filepath.Join(o.outDir, "retention-"+sc.Name+".json")
	outFile, err := os.Create(stdoutPath)
	if err != nil {
		return nil, err
	}
	defer outFile.Close()

	pgRoot := b.postmasterPID(ctx)
	pgBefore, pgOK := proccpu.Tree(pgRoot)
	busyBefore, totalBefore, _ := machineCPU()
	selfBefore := selfCPU()

	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, filepath.Join(o.binDir, "retention"), args...)
	cmd.Env = childEnv("DATABASE_URL="+dbURL, "CONVAI_API_URL="+f.url, "CONVAI_API_KEY="+benchKey, "LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = outFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	b.logf("scenario %s: retention %v (latency %v); log in %s", sc.Name, args, sc.Latency, r.Log)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start retention: %w", err)
	}
	var perf *perfRecorder
	if o.perf {
		perf, err = startPerf(cmd.Process.Pid, filepath.Join(o.outDir, "perf-"+sc.Name+".data"))
		if err != nil {
			b.logf("scenario %s: no profile: %v", sc.Name, err)
		}
	}
	sctx, stopSampling := context.WithCancel(ctx)
	sp := &sampler{admin: b.srv.admin, dbName: dbName, pid: cmd.Process.Pid, fake: f, began: began}
	sampled := make(chan *samples, 1)
	go func() { sampled <- sp.run(sctx) }()

	waitErr := cmd.Wait()
	wall := time.Since(began)
	stopSampling()
	smp := <-sampled
	busyAfter, totalAfter, machineOK := machineCPU()
	pgAfter, _ := proccpu.Tree(pgRoot)
	r.ExitCode = cmd.ProcessState.ExitCode()
	if waitErr != nil && r.ExitCode < 0 {
		return nil, fmt.Errorf("retention: %w (see %s)", waitErr, r.Log)
	}
	if perf != nil {
		r.Perf, r.PerfTop, err = perf.finish(filepath.Join(o.outDir, "perf-"+sc.Name+".txt"))
		if err != nil {
			b.logf("scenario %s: profile: %v", sc.Name, err)
		}
	}
	st, err := f.stats(ctx)
	if err != nil {
		return nil, err
	}
	r.CPU.Fake = f.stop().Seconds()
	fakeStopped = true

	raw, err := os.ReadFile(stdoutPath)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &summary); err != nil {
		return nil, fmt.Errorf("retention exited %d without a JSON summary (see %s): %w", r.ExitCode, r.Log, err)
	}
	r.Status, r.Selected, r.Deleted, r.Failed, r.RunSeconds = summary.Status, summary.Selected, summary.Deleted, summary.Failed, summary.DurationSeconds
	if sy := summary.Sync; sy != nil {
		r.Sync = &syncResult{Full: sy.Full, RowsRead: sy.RowsRead, Seconds: sy.FinishedAt.Sub(sy.StartedAt).Seconds()}
	}
	r.Requests, r.MaxInFlight = st.Requests, st.MaxInFlight
	if st.Requests > 0 {
		r.SessionsPerRequest = float64(st.Deleted) / float64(st.Requests)
	}
	r.WallSeconds = wall.Seconds()
	r.Throughput = float64(r.Deleted) / r.WallSeconds
	r.SteadyThroughput = steady(smp.progress, st.Deleted)
	if r.Limit > 0 {
		r.FractionOfLimit = r.Throughput / r.Limit
		r.SteadyFraction = r.SteadyThroughput / r.Limit
	}
	r.PeakRSSMiB = float64(maxRSS(cmd.ProcessState)) / (1 << 20)
	r.SampledRSSMiB = float64(smp.rss) / (1 << 20)
	r.FirstRequestS = smp.firstRequest.Seconds()
	r.LongestTxS, r.LongestTxSQL, r.LongestTxWhat = smp.longest.Seconds(), smp.longestQuery, smp.longestState
	r.MaxBackends = smp.backends
	if smp.errs > 0 {
		b.logf("scenario %s: %d pg_stat_activity samples failed", sc.Name, smp.errs)
	}

	if err := b.counter.read(ctx, oid, dbName, cnt); err != nil {
		return nil, err
	}
	r.Counts = cnt
	if st.Requests > 0 {
		r.StatementsPerChunk = float64(cnt.Statements) / float64(st.Requests)
		r.TransactionsPerChunk = float64(cnt.Transactions) / float64(st.Requests)
	}
	r.CPU.Retention = cpuOf(cmd.ProcessState).Seconds()
	r.CPU.Bench = (selfCPU() - selfBefore).Seconds()
	r.CPU.Postgres = -1
	if pgOK && pgRoot > 0 {
		r.CPU.Postgres = (pgAfter - pgBefore).Seconds()
	}
	if machineOK {
		r.CPU.Machine = (busyAfter - busyBefore).Seconds()
		r.CPU.Capacity = (totalAfter - totalBefore).Seconds()
	}
	return r, nil
}

// steady is the deletion rate between 10% and 90% of total, from the fake's progress samples.
func steady(points []progressPoint, total int) float64 {
	if total == 0 {
		return 0
	}
	var from, to *progressPoint
	for i := range points {
		p := &points[i]
		if from == nil && p.deleted >= total/10 {
			from = p
		}
		if p.deleted >= total*9/10 {
			to = p
			break
		}
	}
	if from == nil || to == nil || to.at <= from.at {
		return 0
	}
	return float64(to.deleted-from.deleted) / (to.at - from.at).Seconds()
}

// postmasterPID finds the server's main process when it runs on this machine: the parent of its
// checkpointer. 0 when it cannot be seen.
func (b *bench) postmasterPID(ctx context.Context) int {
	var pid int
	if err := b.srv.admin.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&pid); err != nil {
		return 0
	}
	return proccpu.PostgresParent(pid)
}

// selfCPU is the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// execOn runs sql (one or more statements, simple protocol) on the database at dbURL.
func execOn(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}
