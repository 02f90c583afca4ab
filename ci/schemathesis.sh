#!/usr/bin/env bash
# Runs schemathesis with every check against the live service on a fresh PostgreSQL database.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so that a new release cannot turn CI red by itself.
SCHEMATHESIS_VERSION=4.32.5
# shellcheck source=ci/lib.sh
source ci/lib.sh

tools=${CI_TOOLS_DIR:-target/ci-tools}
venv="$tools/schemathesis-$SCHEMATHESIS_VERSION"
if [[ ! -e "$venv/.installed" ]]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION from PyPI"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
    touch "$venv/.installed"
fi

create_scratch_database schemathesis
log="$workdir/server.log"
# Start-up lines only: a line per request would bury any error.
RUST_LOG=warn,ping_roach::cli=info start_service "$log"
echo "the service listens on 127.0.0.1:$port"

# schemathesis.toml at the top level holds the settings; the examples here
# are many more than its default, since a run takes well under a minute.
"$venv/bin/schemathesis" run openapi.yaml --url "http://127.0.0.1:$port" --checks all \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-1000}" --no-color

# A server error would have failed the run above; the log must agree.
if grep -E "ERROR|panicked" "$log"; then
    fail "the service logged errors under schemathesis"
fi
stop_service "$log"
echo "schemathesis: no failures"
