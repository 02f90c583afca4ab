#!/usr/bin/env bash
# Soak run: mixed reads and writes at 64 connections against the release
# build on a fresh PostgreSQL database (5 minutes by default), sampling the
# service's memory, threads and file descriptors. It fails on any request
# error, on memory or threads still growing after warm-up, and on a file
# descriptor leak, and writes its figures to bench/results/.
#
#   bench/soak.sh
#
# Settings (environment): SOAK_DURATION seconds of load (default 300),
# SOAK_CONNECTIONS (64), SOAK_SAMPLE seconds between samples (10), and
# TEST_DATABASE_URL as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${SOAK_DURATION:-300}
connections=${SOAK_CONNECTIONS:-64}
sample_every=${SOAK_SAMPLE:-10}

# shellcheck source=ci/lib.sh
source ci/lib.sh

command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release --locked --quiet

create_scratch_database soak
log="$workdir/server.log"
# Start-up lines only: a line per request would measure the logger.
RUST_LOG=warn,ping_roach::cli=info start_service "$log"
echo "the service listens on 127.0.0.1:$port (pid $server_pid)"

# One line per sample: seconds, RSS in kB, threads, open file descriptors.
sample() {
    local rss threads fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$server_pid/status")
    fds=$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$1 $rss $threads $fds"
}

samples="$workdir/samples"
sample 0 >"$samples"
wrk --threads 2 --connections "$connections" --duration "${duration}s" --timeout 10s \
    --latency --script bench/soak.lua "http://127.0.0.1:$port" >"$workdir/wrk.txt" &
wrk_pid=$!
started=$SECONDS
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep "$sample_every"
    kill -0 "$wrk_pid" 2>/dev/null && sample $((SECONDS - started)) >>"$samples"
done
wait "$wrk_pid"
sleep 2
sample "after" >>"$samples"
cat "$workdir/wrk.txt"

stop_service "$log"

# Verdicts. Warm-up is the first fifth of the run; after it, the largest RSS
# and thread count of the last half may not exceed those of the first half
# by more than 10 % plus 1 MB (or two threads), and the descriptors open once
# the load is over may not exceed those open before it by more than two.
requests=$(awk '/requests in/ { print $1 }' "$workdir/wrk.txt")
non_2xx=$(awk '/Non-2xx/ { print $NF }' "$workdir/wrk.txt")
socket_errors=$(awk -F'[ ,]+' '/Socket errors/ { print $4 + $6 + $8 + $10 }' "$workdir/wrk.txt")
verdict=$(awk -v warmup=$((duration / 5)) -v half=$((duration / 2)) '
    $1 == "after" { after_fds = $4; next }
    $1 == 0 { before_fds = $4; next }
    $1 < warmup { next }
    $1 <= half { if ($2 > rss1) rss1 = $2; if ($3 > thr1) thr1 = $3; next }
    { if ($2 > rss2) rss2 = $2; if ($3 > thr2) thr2 = $3 }
    END {
        ok = (rss2 <= rss1 * 1.1 + 1024) && (thr2 <= thr1 + 2) && (after_fds <= before_fds + 2)
        printf "%s rss_first_half=%d rss_second_half=%d threads_first_half=%d threads_second_half=%d fds_before=%d fds_after=%d\n",
            ok ? "PASS" : "FAIL", rss1, rss2, thr1, thr2, before_fds, after_fds
    }' "$samples")

mkdir -p bench/results
report="bench/results/soak-$(date +%Y-%m-%d-%H%M%S).md"
{
    echo "# Soak run, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$duration s at $connections connections, 70 % GET /, 20 % POST /send (new values), 10 % GET /ping."
    echo
    echo "Requests: $requests; non-2xx: ${non_2xx:-0}; socket errors: ${socket_errors:-0}."
    echo
    echo "Verdict: $verdict"
    echo
    echo "| seconds | RSS (kB) | threads | file descriptors |"
    echo "| --- | --- | --- | --- |"
    awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$samples"
    echo
    echo '```'
    cat "$workdir/wrk.txt"
    echo '```'
} >"$report"
echo "report: $report"
echo "$verdict"

[[ "${non_2xx:-0}" -eq 0 && "${socket_errors:-0}" -eq 0 ]] || fail "requests failed under soak"
[[ "$verdict" == PASS* ]] || fail "resources kept growing: $verdict"
echo "soak: passed"
