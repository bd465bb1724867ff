#!/usr/bin/env bash
# The project's test command.
#
#   scripts/test.sh [GO TEST ARGS...]      go vet, the gofmt check, then go test -race -count=1 ./...
#                                          (and the same in k8s/ when it is its own module); extra
#                                          arguments go to go test, e.g. -run TestX -v
#   scripts/test.sh --lint                 go vet and the gofmt check only
#   scripts/test.sh --with-db CMD [ARGS]   run CMD with TEST_DATABASE_URL pointing at a server
#
# When TEST_DATABASE_URL is unset, a throwaway PostgreSQL is started in a temporary directory
# (scripts/pg.sh) for the tests and removed when they end, also on failure or interrupt.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

pgdir=''
stop_db() {
	if [[ -n $pgdir ]]; then
		"$root/scripts/pg.sh" stop "$pgdir" || echo "test.sh: could not stop the throwaway PostgreSQL in $pgdir" >&2
		pgdir=''
	fi
}
trap stop_db EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# with_db runs "$@" with TEST_DATABASE_URL set, starting a throwaway server if none is given.
with_db() {
	if [[ -z ${TEST_DATABASE_URL:-} ]]; then
		pgdir=$(mktemp -d "${TMPDIR:-/tmp}/retention-pg.XXXXXX")
		local url
		if ! url=$("$root/scripts/pg.sh" start "$pgdir"); then
			rmdir "$pgdir" 2>/dev/null || true
			pgdir=''
			echo "test.sh: could not start a throwaway PostgreSQL" >&2
			return 1
		fi
		export TEST_DATABASE_URL=$url
		echo "test.sh: throwaway PostgreSQL at $url" >&2
	fi
	"$@"
}

# gofmt_check lists Go files that gofmt would change.
gofmt_check() {
	local files f
	files=$(find . \( -name .git -o -name .tmp -o -name bin -o -name vendor -o -name node_modules \) -prune \
		-o -name '*.go' -type f -print0 | xargs -0 -r gofmt -l)
	if [[ -n $files ]]; then
		echo "gofmt: these files need formatting (run gofmt -w):" >&2
		while IFS= read -r f; do echo "  $f"; done <<<"$files" >&2
		return 1
	fi
}

# lint runs go vet in every module and the gofmt check; it reports every failure before failing.
lint() {
	local failed=0
	echo "== go vet ./..." >&2
	go vet ./... || failed=1
	if [[ -f k8s/go.mod ]]; then
		echo "== (cd k8s && go vet ./...)" >&2
		(cd k8s && go vet ./...) || failed=1
	fi
	echo "== gofmt -l" >&2
	gofmt_check || failed=1
	return "$failed"
}

go_tests() {
	local failed=0
	echo "== go test -race -count=1 ./... $*" >&2
	go test -race -count=1 ./... "$@" || failed=1
	if [[ -f k8s/go.mod ]]; then
		echo "== (cd k8s && go test -race -count=1 ./... $*)" >&2
		(cd k8s && go test -race -count=1 ./... "$@") || failed=1
	fi
	return "$failed"
}

case ${1:-} in
--lint)
	lint
	;;
--with-db)
	shift
	[[ $# -gt 0 ]] || {
		echo "usage: $0 --with-db CMD [ARGS...]" >&2
		exit 2
	}
	with_db "$@"
	;;
*)
	status=0
	lint || status=1
	# The HTML compliance report is checked in a real headless Chromium.
	if CHROMIUM=$(bash "$root/scripts/ensure-chromium.sh"); then
		export CHROMIUM
	else
		status=1
	fi
	# The network-namespace fault tests cut packets with nft in a namespace of their own.
	bash "$root/scripts/ensure-netns.sh" || status=1
	# The release image is built and run with podman in k8s/image.
	if PODMAN=$(bash "$root/scripts/ensure-podman.sh"); then
		export PODMAN
	else
		status=1
	fi
	# The connection-pooler tests run the job through a pgbouncer of their own.
	if PGBOUNCER=$(bash "$root/scripts/ensure-pgbouncer.sh"); then
		export PGBOUNCER
	else
		status=1
	fi
	with_db go_tests "$@" || status=1
	if ((status != 0)); then
		echo "test.sh: FAILED" >&2
	fi
	exit "$status"
	;;
esac
