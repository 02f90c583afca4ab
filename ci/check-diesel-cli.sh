#!/usr/bin/env bash
# Checks that diesel CLI and the service agree on a fresh PostgreSQL database: migrations, schema and their record.
set -euo pipefail
cd "$(dirname "$0")/.."

DIESEL_CLI_VERSION=2.3.14
# shellcheck source=ci/lib.sh
source ci/lib.sh

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

create_scratch_database diesel

sql() {
    psql "$database_url" -v ON_ERROR_STOP=1 -qAtc "$1"
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

# The service on the database the CLI migrated.
log="$workdir/server.log"
start_service "$log"
echo "ok: the service listens on 127.0.0.1:$port"

body=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/")
[[ "$body" == "Hello, Docker! (0)" ]] || fail "GET / answered '$body', not 'Hello, Docker! (0)'"
echo "ok: GET / answered '$body'"

stop_service "$log"
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
