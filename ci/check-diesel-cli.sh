#!/usr/bin/env bash
# Checks that diesel CLI and the service agree on a fresh PostgreSQL database: migrations, schema and their record.
set -euo pipefail
cd "$(dirname "$0")/.."

DIESEL_CLI_VERSION=2.3.14
# The admin connection: it creates the scratch database and drops it at the end.
admin_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
binary=target/release/ping-roach

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# diesel CLI: cargo installs it in ~/.cargo/bin, which a fresh shell may not
# have on its PATH yet.
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v diesel >/dev/null; then
    # Its postgres backend links the system's libpq, found through pg_config.
    command -v pg_config >/dev/null || apt_install libpq-dev
    echo "installing diesel_cli $DIESEL_CLI_VERSION"
    cargo install diesel_cli --version "$DIESEL_CLI_VERSION" \
        --no-default-features --features postgres --locked --quiet
fi
command -v psql >/dev/null || apt_install postgresql-client
# diesel print-schema formats its output with rustfmt when it finds one, and
# src/schema.rs is that formatted output.
if ! command -v rustfmt >/dev/null; then
    rustup component add rustfmt
fi
echo "using $(diesel --version | tr -s ' \n' ' ')"

if ! psql "$admin_url" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    echo "cannot connect to $admin_url: start PostgreSQL or set TEST_DATABASE_URL" >&2
    exit 1
fi

# A database of its own, dropped on the way out whatever happens.
database="ping_roach_diesel_$(date +%s)_$$"
base=${admin_url%%\?*}
query=""
[[ "$admin_url" == *\?* ]] && query="?${admin_url#*\?}"
database_url="${base%/*}/$database$query"
workdir=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT
psql "$admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$database\""
echo "scratch database: $database"

sql() {
    psql "$database_url" -v ON_ERROR_STOP=1 -qAtc "$1"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# --locked-schema: diesel.toml names src/schema.rs as print_schema.file, and
# without the flag these commands would rewrite it; with it they fail instead
# if the migrations no longer produce that file.
diesel migration run --locked-schema --database-url "$database_url"
echo "ok: diesel migration run"

diesel print-schema --database-url "$database_url" >"$workdir/schema.rs"
diff -u src/schema.rs "$workdir/schema.rs" || fail "diesel print-schema differs from src/schema.rs"
echo "ok: diesel print-schema equals src/schema.rs"

diesel migration redo --all --locked-schema --database-url "$database_url"
echo "ok: diesel migration redo --all"

migrations=$(find migrations -mindepth 2 -maxdepth 2 -name up.sql | wc -l)
recorded=$(sql 'SELECT count(*) FROM __diesel_schema_migrations')
[[ "$recorded" -eq "$migrations" ]] ||
    fail "__diesel_schema_migrations has $recorded rows for $migrations migrations"
echo "ok: __diesel_schema_migrations records all $migrations migrations"

if [[ ! -x "$binary" ]]; then
    echo "building $binary"
    cargo build --release --locked
fi
binary=$(pwd)/$binary

# The service on the database the CLI migrated. It runs in an empty folder so
# that no .env or SQLite file of the work tree gets in the way.
log="$workdir/server.log"
(cd "$workdir" && exec env DATABASE_URL="$database_url" HTTP_PORT=0 HTTP_HOST=127.0.0.1 \
    RUST_LOG=info "$binary" serve) 2>"$log" &
server_pid=$!
port=""
for _ in $(seq 1 300); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n 1)
    [[ -n "$port" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$log" >&2
        fail "the service exited before it listened"
    fi
    sleep 0.2
done
if [[ -z "$port" ]]; then
    cat "$log" >&2
    fail "the service did not log 'listening on' within 60 s"
fi
echo "ok: the service listens on 127.0.0.1:$port"

body=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/")
[[ "$body" == "Hello, Docker! (0)" ]] || fail "GET / answered '$body', not 'Hello, Docker! (0)'"
echo "ok: GET / answered '$body'"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[[ $status -eq 0 ]] || {
    cat "$log" >&2
    fail "the service exited with $status after SIGTERM, not 0"
}
echo "ok: the service stopped with 0 on SIGTERM"

if grep -q "applied migration" "$log"; then
    cat "$log" >&2
    fail "the service applied migrations that diesel CLI had already applied"
fi
recorded=$(sql 'SELECT count(*) FROM __diesel_schema_migrations')
[[ "$recorded" -eq "$migrations" ]] ||
    fail "__diesel_schema_migrations has $recorded rows after the service ran, not $migrations"
echo "ok: the service applied nothing; __diesel_schema_migrations still has $recorded rows"

echo "check-diesel-cli: diesel CLI $DIESEL_CLI_VERSION and the service agree"
