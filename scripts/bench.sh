#!/usr/bin/env bash
# The project's benchmarks.
#
#   scripts/bench.sh [RETENTION-BENCH FLAGS]   build the binaries, start a bench PostgreSQL, seed it
#                                              (1M expired sessions by default) and measure real
#                                              runs of bin/retention; e.g. --sessions 10000000,
#                                              --scenarios b --perf; --help lists the flags
#   scripts/bench.sh go [GO TEST ARGS]         the go test benchmarks of every package (or of the
#                                              packages named) on the same kind of server
#
# The server is BENCH_DATABASE_URL, else TEST_DATABASE_URL, else a throwaway PostgreSQL started
# with scripts/pg.sh and the settings below, removed when the bench ends; with BENCH_DURABLE=1
# that server runs with fsync and synchronous_commit on, as in production. docs/BENCHMARKS.md
# explains the figures and the settings.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

# Bench settings on top of scripts/pg.sh's (fsync and synchronous_commit off): pg_stat_statements
# to count and time each statement, I/O timing in the plans, memory for a 10M-row table and its
# indexes, and WAL room so the seed does not checkpoint every few seconds.
readonly BENCH_PG_CONF="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 1000
pg_stat_statements.track = top
track_io_timing = on
shared_buffers = 1GB
maintenance_work_mem = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min"

pgdir=''
stop_db() {
	if [[ -n $pgdir ]]; then
		"$root/scripts/pg.sh" stop "$pgdir" || echo "bench.sh: could not stop the throwaway PostgreSQL in $pgdir" >&2
		pgdir=''
	fi
}
trap stop_db EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# server sets url to the server to use, starting a throwaway one when none is given. It must
# run in this shell, not in $(...), so that stop_db knows what to stop.
url=''
server() {
	url=${BENCH_DATABASE_URL:-${TEST_DATABASE_URL:-}}
	if [[ -n $url ]]; then
		return
	fi
	pgdir=$(mktemp -d "${TMPDIR:-/tmp}/retention-bench-pg.XXXXXX")
	local conf=$BENCH_PG_CONF
	if [[ -n ${BENCH_DURABLE:-} ]]; then
		# Production settings: every commit waits for its WAL flush, and the flush is real.
		conf+=$'\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on'
		echo "bench.sh: BENCH_DURABLE is set: fsync and synchronous_commit on" >&2
	fi
	if ! url=$(PG_CONF=$conf "$root/scripts/pg.sh" start "$pgdir"); then
		rmdir "$pgdir" 2>/dev/null || true
		pgdir=''
		echo "bench.sh: could not start a throwaway PostgreSQL" >&2
		return 1
	fi
	echo "bench.sh: throwaway PostgreSQL at $url (data in $pgdir)" >&2
}

# is_go_test reports whether the arguments are for go test: "go" first, or go test's own
# single-dash -bench/-run flags.
is_go_test() {
	[[ ${1:-} == go ]] && return 0
	local a
	for a in "$@"; do
		case $a in -bench* | -run* | -benchtime* | -count* | -cpuprofile*) return 0 ;; esac
	done
	return 1
}

if is_go_test "$@"; then
	[[ ${1:-} == go ]] && shift
	pkgs=(./...)
	for a in "$@"; do
		case $a in ./* | */...) pkgs=() ;; esac
	done
	server
	echo "== go test -run='^\$' -bench=. -benchmem $* ${pkgs[*]}" >&2
	status=0
	TEST_DATABASE_URL=$url go test -run='^$' -bench=. -benchmem "$@" "${pkgs[@]}" || status=$?
	exit "$status"
fi

echo "== go build -o bin/ ./cmd/..." >&2
go build -o bin/ ./cmd/...
for a in "$@"; do
	case $a in -h | -help | --help) exec bin/retention-bench --help ;; esac
done
server
status=0
BENCH_DATABASE_URL=$url bin/retention-bench "$@" || status=$?
exit "$status"
