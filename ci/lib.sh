# shellcheck shell=bash
# Shared by the ci/ scripts: a scratch PostgreSQL database and the service
# running on it. Source it after `cd` to the repository root.

# The admin connection: it creates the scratch database and drops it again.
admin_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
binary=${PING_ROACH_BIN:-target/release/ping-roach}
workdir=$(mktemp -d)
database=""
database_url=""
server_pid=""
port=""

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$database" ]]; then
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# Creates an empty database named after $1 and sets database_url to it.
create_scratch_database() {
    if ! psql "$admin_url" -qAtc 'SELECT 1' >/dev/null 2>&1; then
        fail "cannot connect to $admin_url: start PostgreSQL or set TEST_DATABASE_URL"
    fi
    database="ping_roach_$1_$(date +%s)_$$"
    local base=${admin_url%%\?*} query=""
    [[ "$admin_url" == *\?* ]] && query="?${admin_url#*\?}"
    database_url="${base%/*}/$database$query"
    psql "$admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$database\""
    echo "scratch database: $database"
}

# Starts the release binary on database_url, logging to $1, and waits until
# it listens; sets server_pid and port. It runs in an empty folder so that
# no .env or SQLite file of the work tree gets in the way.
start_service() {
    local log=$1
    if [[ ! -x "$binary" ]]; then
        echo "building $binary"
        cargo build --release --locked
    fi
    local absolute_binary
    absolute_binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
    (cd "$workdir" && exec env DATABASE_URL="$database_url" HTTP_PORT=0 HTTP_HOST=127.0.0.1 \
        RUST_LOG="${RUST_LOG:-info}" "$absolute_binary" serve) 2>"$log" &
    server_pid=$!
    for _ in $(seq 1 300); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n 1)
        [[ -n "$port" ]] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$log" >&2
            fail "the service exited before it listened"
        fi
        sleep 0.2
    done
    cat "$log" >&2
    fail "the service did not log 'listening on' within 60 s"
}

# Sends SIGTERM and fails unless the service exits with 0.
stop_service() {
    local log=$1 status=0
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    if [[ $status -ne 0 ]]; then
        cat "$log" >&2
        fail "the service exited with $status after SIGTERM, not 0"
    fi
}
