#!/usr/bin/env bash
# The retention job end to end, on this machine alone: a throwaway PostgreSQL, the fake Convai
# API, the demo data in scripts/demo-seed.sql, a plan, erasure requests, a dry run, a real run,
# and what each side saw.
# Everything it starts is stopped and removed when it ends. It exits with the real run's status.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

readonly API_KEY=demo-key

work=''
pgdir=''
fake_pid=''
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [[ -n $fake_pid ]]; then
		kill "$fake_pid" 2>/dev/null || true
		wait "$fake_pid" 2>/dev/null || true
	fi
	if [[ -n $pgdir && -d $pgdir ]]; then
		scripts/pg.sh stop "$pgdir" || echo "demo.sh: could not stop the PostgreSQL in $pgdir" >&2
	fi
	if [[ -n $work ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "demo.sh: $*" >&2
	exit 1
}

step() {
	printf '\n== %s\n' "$*"
}

# need_psql installs the PostgreSQL client when it is missing and we may.
need_psql() {
	command -v psql >/dev/null && return 0
	if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "demo.sh: psql not found; installing the postgresql-client package" >&2
		{
			DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client
		} >&2 || die "installing postgresql-client failed"
		command -v psql >/dev/null && return 0
	fi
	die "psql not found; install the 'postgresql-client' package (Debian/Ubuntu: apt-get install postgresql-client)"
}

# http_get prints the body at http://ADDR/PATH, with curl when there is one.
http_get() {
	local addr=$1 path=$2
	if command -v curl >/dev/null; then
		curl -fsS --max-time 10 -H "Authorization: Bearer $API_KEY" -H "CONVAI-API-KEY: $API_KEY" "http://$addr$path"
		return
	fi
	local host=${addr%:*} port=${addr##*:}
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\nCONVAI-API-KEY: %s\r\nConnection: close\r\n\r\n' "$path" "$addr" "$API_KEY" >&3
	# Drop the status line and headers: everything up to the first empty line.
	sed '1,/^\r\{0,1\}$/d' <&3
	exec 3<&-
}

need_psql
work=$(mktemp -d "${TMPDIR:-/tmp}/retention-demo.XXXXXX")

step "build"
go build -o bin/ ./cmd/...
[[ -x bin/retention && -x bin/convai-fake ]] || die "go build did not produce bin/retention and bin/convai-fake"

step "start a throwaway PostgreSQL"
# A directory of its own: as root, the server runs as the postgres user, who cannot enter $work.
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/retention-demo-pg.XXXXXX")
DATABASE_URL=$(scripts/pg.sh start "$pgdir") || die "could not start PostgreSQL"
echo "$DATABASE_URL"

export DATABASE_URL CONVAI_API_KEY=$API_KEY RETENTION_RATE=0
unset CONVAI_API_KEY_FILE

step "retention migrate"
bin/retention migrate

step "seed demo data (scripts/demo-seed.sql)"
psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f scripts/demo-seed.sql
psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -P footer=off <<'EOF'
SELECT s.character_id,
       count(*) AS sessions,
       coalesce(p.max_age, d.max_age) AS max_age,
       coalesce(p.enabled, true) AS policy_enabled,
       EXISTS (SELECT 1 FROM retention.holds h
               WHERE h.character_id = s.character_id AND h.session_id IS NULL AND h.released_at IS NULL) AS on_hold,
       count(*) FILTER (WHERE s.last_active_at < now() - coalesce(p.max_age, d.max_age)) AS older_than_max_age
FROM retention.sessions s
LEFT JOIN retention.policies p ON p.character_id = s.character_id
CROSS JOIN (SELECT max_age FROM retention.policies WHERE character_id IS NULL) d
GROUP BY s.character_id, p.max_age, d.max_age, p.enabled
ORDER BY s.character_id;
EOF

step "start the fake Convai API, holding the sessions the app stored"
# Convai holds every session the app stored: the fake starts with them (--sessions), so its
# lists show the live ones, as verify needs.
psql "$DATABASE_URL" -XAt -v ON_ERROR_STOP=1 >"$work/fake-sessions.json" <<'EOF'
SELECT coalesce(json_object_agg(character_id, sessions), '{}') FROM (
    SELECT character_id, json_object_agg(session_id,
               json_build_array(to_char(last_active_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) AS sessions
    FROM retention.sessions GROUP BY character_id) x;
EOF
# Convai kept long-term memory of player-42 with each character they talked to (one fact per
# session), and of another end user with the same characters; a delete-all takes a second.
psql "$DATABASE_URL" -XAt -v ON_ERROR_STOP=1 >"$work/fake-memories.json" <<'EOF'
SELECT json_build_object('end_users', json_build_array('player-42', 'player-7'), 'memories',
       json_object_agg(character_id, users))
FROM (SELECT character_id, json_build_object('player-42', json_agg(json_build_object(
             'id', 'memory-' || session_id, 'memory', 'likes dragons', 'session_id', session_id)),
             'player-7', json_build_array(json_build_object('id', 'memory-p7-' || character_id, 'memory', 'speaks French'))) AS users
      FROM retention.sessions WHERE end_user_id = 'player-42' GROUP BY character_id) x;
EOF
CONVAI_API_KEY=$API_KEY bin/convai-fake --listen 127.0.0.1:0 --sessions "$work/fake-sessions.json" \
	--memories "$work/fake-memories.json" --memory-delete-delay 1s >"$work/fake.log" 2>&1 &
fake_pid=$!
addr=''
for _ in $(seq 1 100); do
	addr=$(sed -n 's|.*convai-fake listening on http://\([^[:space:]]*\).*|\1|p' "$work/fake.log" | head -n 1)
	[[ -n $addr ]] && break
	kill -0 "$fake_pid" 2>/dev/null || {
		cat "$work/fake.log" >&2
		die "convai-fake exited before it was listening"
	}
	sleep 0.1
done
[[ -n $addr ]] || {
	cat "$work/fake.log" >&2
	die "convai-fake did not say where it listens within 10s"
}
echo "http://$addr"

export CONVAI_API_URL="http://$addr"

step "retention plan (what the next run would delete, per character)"
bin/retention plan || die "the plan failed (exit status $?)"

step "retention policy apply: a mistaken default ('1 day' for '30 days') stopped by the safety cap"
mkdir -p .tmp
bin/retention policy export --out .tmp/demo-policies.yaml || die "the export failed (exit status $?)"
sed -i '0,/max_age: 30 days/s//max_age: 1 day/' .tmp/demo-policies.yaml
pstatus=0
bin/retention policy apply -f .tmp/demo-policies.yaml --abort-above-percent 10 --actor demo || pstatus=$?
echo "(exit status $pstatus: 6 = refused by the safety cap; nothing changed)"
[[ $pstatus == 6 ]] || die "policy apply should have been refused with exit 6"

step "retention erase (people ask to be forgotten: sent first, whatever their age or policy)"
# A recent session of char-dune, whose policy is disabled; a session the app never stored; and a
# session of char-ember, under a legal hold, which wins: that request stays open, blocked.
dune=$(psql "$DATABASE_URL" -XAt -c "SELECT session_id FROM retention.sessions WHERE character_id = 'char-dune' ORDER BY last_active_at DESC LIMIT 1")
ember=$(psql "$DATABASE_URL" -XAt -c "SELECT session_id FROM retention.sessions WHERE character_id = 'char-ember' ORDER BY last_active_at DESC LIMIT 1")
bin/retention erase --character char-dune --session "$dune" --reason "ticket DSR-1001" --due 72h --requested-by privacy-desk ||
	die "erase failed (exit status $?)"
bin/retention erase --character char-atlas --session session-never-stored --reason "ticket DSR-1002" --requested-by privacy-desk ||
	die "erase failed (exit status $?)"
bin/retention erase --character char-ember --session "$ember" --reason "ticket DSR-1003" --requested-by privacy-desk ||
	die "erase failed (exit status $?)"
# An end user of the app asks to be forgotten: every session with every character, then their
# long-term memory with each (confirmed by a list), then their record at Convai.
bin/retention erase --end-user player-42 --end-user-record --reason "ticket DSR-1004" --requested-by privacy-desk ||
	die "erase failed (exit status $?)"

step "retention run --dry-run"
bin/retention run --dry-run || die "the dry run failed (exit status $?)"

step "retention audit keygen (the key that signs each run's checkpoint)"
bin/retention audit keygen --out "$work/checkpoint.key" >"$work/checkpoint.vkey" || die "keygen failed"
echo "verifier key: $(cat "$work/checkpoint.vkey")"
mkdir -p "$work/checkpoints"
export RETENTION_CHECKPOINT_KEY_FILE="$work/checkpoint.key" RETENTION_CHECKPOINT_DIR="$work/checkpoints"

step "retention run"
status=0
bin/retention run || status=$?
echo "(exit status $status)"

step "what the fake Convai API saw (/_fake/stats)"
http_get "$addr" /_fake/stats || echo "demo.sh: could not read /_fake/stats" >&2

step "what the database recorded"
psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -P footer=off <<'EOF'
SELECT id, status, selected, deleted, failed, skipped, skipped_by_reason, finished_at - started_at AS took
FROM retention.runs ORDER BY id;
SELECT status, count(*) AS sessions, count(DISTINCT character_id) AS characters
FROM retention.deletions GROUP BY status ORDER BY status;
EOF

step "the erasure requests (retention.erasure_status)"
psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -P footer=off <<'EOF'
SELECT id, character_id, session_id, state, blocked_by, sessions_deleted, due_at, completed_at
FROM retention.erasure_status ORDER BY id;
EOF

step "the end user's erasure: sessions deleted, memory confirmed gone (retention report --end-user player-42)"
bin/retention report --end-user player-42 --format table || die "the end user's evidence failed (exit status $?)"
echo "what the fake Convai API holds of player-42 with char-atlas, and of player-7 (another end user, untouched):"
http_get "$addr" "/_fake/memories?character=char-atlas&end_user=player-42" || echo "demo.sh: could not read /_fake/memories" >&2
http_get "$addr" "/_fake/memories?character=char-atlas&end_user=player-7" || echo "demo.sh: could not read /_fake/memories" >&2

step "retention report (what compliance reads)"
bin/retention report --format table || die "the report failed (exit status $?)"

step "retention audit prove / check (one session's deletion, checked with no database)"
read -r char sess < <(psql "$DATABASE_URL" -XAt -F ' ' -c "SELECT character_id, session_id FROM retention.outcomes WHERE status = 'deleted' ORDER BY claim_id, ord LIMIT 1")
bin/retention audit prove --character "$char" --session "$sess" --out "$work/proof.json" || die "prove failed (exit status $?)"
DATABASE_URL='' bin/retention audit check --proof "$work/proof.json" --key "$work/checkpoint.vkey" || die "check failed (exit status $?)"

step "retention verify (Convai's list: are the deleted sessions gone?)"
bin/retention verify || die "verify found deleted sessions still at Convai, or could not list (exit status $?)"

step "retention audit verify (the log against the signed checkpoint kept outside the database, the verification chain)"
bin/retention audit verify --checkpoint-file "$work/checkpoints/latest.note" --key "$work/checkpoint.vkey" ||
	die "the results trail does not verify (exit status $?)"

exit "$status"
