#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for tests and demos.
#
#   scripts/pg.sh start DIR   create a cluster in DIR, start it, print its URL on stdout
#   scripts/pg.sh standby PRIMARY DIR
#                             copy the server started in PRIMARY (pg_basebackup -R) into DIR,
#                             start it as its streaming standby, print its URL on stdout
#   scripts/pg.sh stop DIR    stop the server started in DIR and delete DIR
#
# DIR must be missing or empty for start and standby. The server trusts every local connection (a unix
# socket in DIR/sock and 127.0.0.1 on a free port) and trades durability for speed (fsync=off),
# so it is only fit for data you can lose. As root, the cluster is run by the postgres user.
#
# PG_CONF, if set, holds more postgresql.conf lines appended after these settings (the bench
# uses it to preload pg_stat_statements and size memory).
#
# The server binaries are looked up on PATH, then in /usr/lib/postgresql/*/bin; as root with
# apt-get, the postgresql package is installed when they are missing.
set -euo pipefail

readonly MARKER=.throwaway-postgres
readonly PKG=postgresql

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start DIR | standby PRIMARY DIR | stop DIR" >&2
	exit 2
}

# find_bindir prints the directory holding initdb, pg_ctl and postgres, or fails.
find_bindir() {
	local d
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		d=$(dirname "$(command -v initdb)")
		if [[ -x $d/pg_ctl && -x $d/postgres ]]; then
			echo "$d"
			return 0
		fi
	fi
	# The newest installed major version wins.
	for d in $(shopt -s nullglob; printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
		if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# install_server installs Debian's postgresql package without starting its own cluster.
install_server() {
	echo "pg.sh: PostgreSQL server binaries not found; installing the $PKG package" >&2
	local policy=/usr/sbin/policy-rc.d own_policy=''
	# Keep the package from starting its default cluster: we only want the binaries.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$PKG"
	} >&2 || rc=$?
	if [[ -n $own_policy ]]; then
		rm -f "$policy"
	fi
	return "$rc"
}

bindir() {
	local d
	if d=$(find_bindir); then
		echo "$d"
		return 0
	fi
	if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
		install_server || die "installing the $PKG package failed"
		if d=$(find_bindir); then
			echo "$d"
			return 0
		fi
	fi
	die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; install the '$PKG' package (Debian/Ubuntu: apt-get install $PKG)"
}

# as_owner runs a command as the cluster owner: the postgres user when we are root.
as_owner() {
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# port_in_use reports whether something accepts connections on 127.0.0.1:$1.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

random_port() {
	echo $((20000 + (RANDOM * 32768 + RANDOM) % 40000))
}

# prepare_dir checks and makes DIR for a new cluster, and arms the trap that removes what was
# made if the start fails. It sets start_dir and BIN.
prepare_dir() {
	local dir=$1
	if [[ -e $dir && ! -d $dir ]]; then
		die "$dir exists and is not a directory"
	fi
	if [[ -d $dir && -n $(ls -A "$dir") ]]; then
		die "$dir is not empty; give a new or empty directory"
	fi
	# Globals, not locals: the EXIT trap runs after the function has returned.
	made_dir='' started='' ok=''
	if [[ ! -d $dir ]]; then
		mkdir -p "$dir"
		made_dir=1
	fi
	dir=$(cd "$dir" && pwd -P)
	start_dir=$dir
	if [[ $dir == *"'"* ]]; then
		rm -rf "${made_dir:+$dir}"
		die "$dir contains a quote; use a plain directory name"
	fi

	# On any failure: stop what started and remove what we made, so nothing is left behind.
	cleanup_start() {
		if [[ -n $ok ]]; then
			return
		fi
		if [[ -n $started ]]; then
			as_owner "$BIN/pg_ctl" -D "$start_dir/data" stop -m immediate -w >/dev/null 2>&1 || true
		fi
		if [[ -n $made_dir ]]; then
			rm -rf "$start_dir"
		else
			find "$start_dir" -mindepth 1 -delete 2>/dev/null || true
		fi
	}
	trap cleanup_start EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	BIN=$(bindir)
	touch "$dir/$MARKER"
	mkdir -p "$dir/sock"

	if [[ $EUID -eq 0 ]]; then
		if ! id postgres >/dev/null 2>&1; then
			useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres ||
				die "cannot create the postgres user to run the server as"
		fi
		chown -R postgres: "$dir"
		as_owner test -w "$dir" ||
			die "user postgres cannot write to $dir (is a parent directory closed to it?); use a directory under /tmp"
	fi

	# A unix socket path is limited to 107 bytes.
	if ((${#dir} + 25 > 107)); then
		die "$dir is too long for a unix socket path; use a shorter directory"
	fi
}

# launch starts the cluster in $start_dir/data on a free port of 127.0.0.1, writes its URL to
# $start_dir/url and prints it.
launch() {
	local dir=$start_dir port='' attempt
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(random_port)
		if port_in_use "$port"; then
			continue
		fi
		if as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" -w -t 60 start \
			>"$dir/pg_ctl.log" 2>&1; then
			started=1
			break
		fi
		# Another process may have taken the port between the check and the bind: try another.
		if grep -q 'could not bind\|Address already in use\|could not create any TCP/IP sockets' "$dir/postgres.log" 2>/dev/null; then
			: >"$dir/postgres.log"
			continue
		fi
		cat "$dir/pg_ctl.log" "$dir/postgres.log" >&2 2>/dev/null || true
		die "the server did not start (log above)"
	done
	[[ -n $started ]] || die "found no free port after $attempt tries"

	# pg_ctl -w has waited until the server accepts connections.
	local url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "$url" >"$dir/url"
	ok=1
	trap - EXIT INT TERM
	echo "$url"
}

cmd_start() {
	prepare_dir "$1"
	local dir=$start_dir
	if ! as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
		>"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi

	# Replication connections too, for a standby made with "standby".
	cat >"$dir/data/pg_hba.conf" <<-'EOF'
		# Throwaway test server: trust local connections only.
		local all all trust
		host  all all 127.0.0.1/32 trust
		local replication all trust
		host  replication all 127.0.0.1/32 trust
	EOF
	cat >>"$dir/data/postgresql.conf" <<-EOF

		# Added by scripts/pg.sh: a throwaway server for tests.
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir/sock'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 200
		shared_buffers = 128MB
		logging_collector = off
	EOF
	if [[ -n ${PG_CONF:-} ]]; then
		printf '\n# From PG_CONF.\n%s\n' "$PG_CONF" >>"$dir/data/postgresql.conf"
	fi
	launch
}

# cmd_standby copies the running server of PRIMARY with pg_basebackup and starts the copy as
# its standby, streaming asynchronously (primary_conninfo and standby.signal from -R).
cmd_standby() {
	local primary=$1
	[[ -e $primary/$MARKER && -f $primary/url ]] || die "$primary was not made by '$0 start'"
	primary=$(cd "$primary" && pwd -P)
	local pport
	pport=$(sed -E 's|^.*@127\.0\.0\.1:([0-9]+)/.*$|\1|' "$primary/url")
	[[ $pport =~ ^[0-9]+$ ]] || die "cannot read the port of $primary/url"
	prepare_dir "$2"
	local dir=$start_dir basebackup
	# Beside the server binary (PATH may hold links to only some of them), else on PATH.
	basebackup=$(dirname "$(readlink -f "$BIN/postgres")")/pg_basebackup
	if [[ ! -x $basebackup ]]; then
		basebackup=$(command -v pg_basebackup) ||
			die "pg_basebackup not found beside $BIN/postgres or on PATH; install the '$PKG' package"
	fi
	if ! as_owner "$basebackup" -D "$dir/data" -h 127.0.0.1 -p "$pport" -U postgres -R -X stream \
		-c fast --no-sync >"$dir/basebackup.log" 2>&1; then
		cat "$dir/basebackup.log" >&2
		die "pg_basebackup from $primary failed"
	fi
	# The copy has the primary's settings; its socket goes in its own directory.
	cat >>"$dir/data/postgresql.conf" <<-EOF

		# Added by scripts/pg.sh standby: a streaming standby of $primary.
		unix_socket_directories = '$dir/sock'
	EOF
	launch
}

cmd_stop() {
	local dir=$1
	[[ -d $dir ]] || die "$dir does not exist"
	[[ -e $dir/$MARKER ]] || die "$dir was not made by '$0 start'; refusing to touch it"
	if [[ -e $dir/data/postmaster.pid ]]; then
		BIN=$(bindir)
		if ! as_owner "$BIN/pg_ctl" -D "$dir/data" stop -m fast -w -t 30 >/dev/null 2>&1 &&
			! as_owner "$BIN/pg_ctl" -D "$dir/data" stop -m immediate -w -t 30 >/dev/null 2>&1; then
			# Exit status 3: no server is running (a stale pid file after a crash), so it is gone.
			local rc=0
			as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || rc=$?
			((rc == 3)) || die "could not stop the server in $dir/data (see $dir/postgres.log)"
		fi
	fi
	rm -rf "$dir"
}

[[ $# -ge 1 ]] || usage
case $1 in
start)
	[[ $# -eq 2 ]] || usage
	cmd_start "$2"
	;;
standby)
	[[ $# -eq 3 ]] || usage
	cmd_standby "$2" "$3"
	;;
stop)
	[[ $# -eq 2 ]] || usage
	cmd_stop "$2"
	;;
*) usage ;;
esac
