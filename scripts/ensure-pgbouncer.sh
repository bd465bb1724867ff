#!/usr/bin/env bash
# Make sure the connection-pooler tests (cmd/retention: TestPooler*) find pgbouncer, and print
# its path. They start their own pgbouncer, in transaction and in session pooling mode, in front
# of the test server, on a free port of 127.0.0.1.
#
#   scripts/ensure-pgbouncer.sh
#
# $PGBOUNCER wins when set; then pgbouncer on PATH, then Debian's /usr/sbin/pgbouncer (not on a
# normal user's PATH). When none is there and this runs as root with apt-get (a fresh CI
# machine), the Debian package is installed. Otherwise it fails, saying what to install.
set -euo pipefail

readonly PKG=pgbouncer

# find prints pgbouncer's path; it returns 1 when there is none, 2 when $PGBOUNCER is wrong.
find_pgbouncer() {
	if [[ -n ${PGBOUNCER:-} ]]; then
		[[ -x $PGBOUNCER && -f $PGBOUNCER ]] || return 2
		echo "$PGBOUNCER"
	elif command -v pgbouncer >/dev/null; then
		command -v pgbouncer
	elif [[ -x /usr/sbin/pgbouncer ]]; then
		echo /usr/sbin/pgbouncer
	else
		return 1
	fi
}

rc=0
find_pgbouncer || rc=$?
if ((rc == 0)); then
	exit 0
elif ((rc == 2)); then
	echo "ensure-pgbouncer.sh: PGBOUNCER=$PGBOUNCER is not an executable file" >&2
	exit 1
fi

if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "ensure-pgbouncer.sh: pgbouncer not found; install it (Debian/Ubuntu: apt-get install $PKG)" \
		"or set PGBOUNCER=/path/to/pgbouncer" >&2
	exit 1
fi
echo "ensure-pgbouncer.sh: pgbouncer not found; installing $PKG" >&2
{
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$PKG"
} >&2 || {
	echo "ensure-pgbouncer.sh: installing $PKG failed" >&2
	exit 1
}
find_pgbouncer || {
	echo "ensure-pgbouncer.sh: $PKG is installed but pgbouncer is neither on PATH nor in /usr/sbin" >&2
	exit 1
}
