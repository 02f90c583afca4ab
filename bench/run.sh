#!/usr/bin/env bash
# Load benchmark of ping-roach on PostgreSQL: drives the release
# build with wrk, runs the same SQL with pgbench for a baseline, samples the
# service's memory, checks the project's performance targets and writes a Markdown report
# to bench/results/. Everything runs on 127.0.0.1, each run bounded in time.
#
#   bench/run.sh            the full benchmark (about 7 minutes at 10 s a run)
#   bench/run.sh --tune     GET /, POST /send and GET /ping for WORKERS 2 to 32
#                           (about 6 minutes)
#
# Settings (environment):
#   BENCH_DURATION      seconds per wrk or pgbench run (default 10)
#   BENCH_DATABASE_URL  an admin URL of the PostgreSQL server to use (default
#                       postgres://postgres@127.0.0.1:5432/postgres); a fresh
#                       database is created on it and dropped at the end
#   BENCH_MAX_BUSY      before measuring, wait while other processes keep more
#                       than this percentage of the machine's CPU busy (25)
#   BENCH_MAX_WAIT      ... but for at most this many seconds (900)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly DURATION=${BENCH_DURATION:-10}
readonly ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
readonly MAX_BUSY=${BENCH_MAX_BUSY:-25}
readonly MAX_WAIT=${BENCH_MAX_WAIT:-900}
# The Go original's GET /ping at 64 connections, measured earlier with wrk on
# this kind of machine (2 cores). It cannot be built here, so it is a constant.
readonly GO_PING_RPS=45000
readonly WRK_THREADS=2
readonly PGBENCH_THREADS=2
readonly CONNECTIONS=(16 64)
readonly TUNE_WORKERS=(2 4 8 16 32)
readonly BIG_BODY_BYTES=$((20 * 1024 * 1024))
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
readonly CLK_TCK NPROC

MODE=full
STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR=bench/results
RAW_DIR=""      # raw wrk, pgbench and service output of this run
WORK_DIR=""     # scratch space, removed on exit
BIN=""
COMMIT=""
DB_NAME=""
DB_URL=""
SERVICE_PID=""
SERVICE_PORT=""
SERVICE_LOG=""
SAMPLER_PID=""
BUSY_BEFORE=""

# Results, keyed by run id (such as get-1m-16 or pg-read-1m-16).
declare -A RPS=() P50=() P99=() ERRORS=() LATENCY_AVG=() ROWS=() PROTOCOL=()
declare -A CPU_ALL=() CPU_GEN=() CPU_SVC=() CPU_REST=() CPU_STEAL=() PEAK_RSS=() PEAK_THREADS=()
# Memory figures (kB) and thread counts, keyed by name.
declare -A MEM=()
RUN_ORDER=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The comment at the top of this file (the working directory is the
# repository's root by now).
usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "bench/$(basename "$0")"
}

# --- set-up ------------------------------------------------------------------

parse_arguments() {
    case "${1:-}" in
        "") MODE=full ;;
        --tune) MODE=tune ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a whole number of seconds"
}

install_package() {
    [[ $(id -u) == 0 ]] || die "$1 is missing; install it (Debian package $1) and run again"
    log "installing $1"
    apt-get install -y "$1" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; }
}

ensure_tools() {
    command -v wrk >/dev/null || install_package wrk
    command -v psql >/dev/null || install_package postgresql-client
    # Debian ships pgbench with the server; postgresql-contrib pulls it in.
    command -v pgbench >/dev/null || install_package postgresql-contrib
    command -v curl >/dev/null || install_package curl
    command -v cargo >/dev/null || die "cargo is missing"
}

build() {
    COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null) ]]; then
        COMMIT="$COMMIT with local changes"
    fi
    log "building the release binary ($COMMIT)"
    cargo build --release --locked
    BIN="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/ping-roach"
    [[ -x $BIN ]] || die "no binary at $BIN"
}

admin_sql() { psql "$ADMIN_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
bench_sql() { psql "$DB_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

ensure_postgres() {
    if admin_sql 'SELECT 1' >/dev/null 2>&1; then
        return
    fi
    command -v pg_ctlcluster >/dev/null || die "PostgreSQL does not answer at $ADMIN_URL"
    local cluster
    for cluster in /etc/postgresql/*/main; do
        [[ -d $cluster ]] || continue
        log "starting PostgreSQL $(basename "$(dirname "$cluster")")"
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$cluster")")" main start || true
    done
    for _ in $(seq 30); do
        admin_sql 'SELECT 1' >/dev/null 2>&1 && return
        sleep 1
    done
    die "PostgreSQL does not answer at $ADMIN_URL"
}

# The admin URL with its database name replaced by $1.
url_for_database() {
    local base=${ADMIN_URL%%\?*} query=""
    [[ $ADMIN_URL == *\?* ]] && query="?${ADMIN_URL#*\?}"
    printf '%s/%s%s' "${base%/*}" "$1" "$query"
}

create_database() {
    DB_NAME="ping_roach_bench_$(date +%s)_$$"
    DB_URL=$(url_for_database "$DB_NAME")
    log "creating database $DB_NAME"
    admin_sql "CREATE DATABASE $DB_NAME" >/dev/null
}

cleanup() {
    local status=$?
    stop_sampler
    stop_service
    if [[ -n $DB_NAME ]]; then
        admin_sql "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 ||
            log "could not drop database $DB_NAME"
    fi
    [[ -n $WORK_DIR ]] && rm -rf "$WORK_DIR"
    exit "$status"
}

# Busy share of the whole machine, in percent, over $1 seconds.
machine_busy_percent() {
    local before after
    before=$(cpu_counters)
    sleep "$1"
    after=$(cpu_counters)
    awk -v b="$before" -v a="$after" 'BEGIN {
        split(b, x); split(a, y)
        printf "%.0f", 100 * (y[1] - x[1]) / (y[3] - x[3]) }'
}

# Other builds or test runs on the machine skew every figure: wait for them.
wait_for_quiet_machine() {
    local waited=0 busy
    while true; do
        busy=$(machine_busy_percent 3)
        if ((busy <= MAX_BUSY)); then
            BUSY_BEFORE=$busy
            log "machine ${busy}% busy before measuring"
            return
        fi
        if ((waited >= MAX_WAIT)); then
            BUSY_BEFORE="$busy (gave up waiting)"
            log "machine still ${busy}% busy after ${waited}s; measuring anyway"
            return
        fi
        log "machine ${busy}% busy (busiest: $(ps -eo comm --sort=-%cpu --no-headers | head -3 | paste -sd, -)); waiting 30 s"
        sleep 30
        waited=$((waited + 30))
    done
}

# --- the service -------------------------------------------------------------

# start_service WORKERS RUST_LOG LOG_FILE
# Runs the binary from the scratch directory, with a clean environment, so
# that no .env file or stray variable changes its settings.
start_service() {
    local workers=$1 filter=$2
    SERVICE_LOG=$3
    (
        cd "$WORK_DIR"
        exec env -i PATH="$PATH" DATABASE_URL="$DB_URL" HTTP_HOST=127.0.0.1 HTTP_PORT=0 \
            WORKERS="$workers" DATABASE_POOL_SIZE="$workers" RUST_LOG="$filter" "$BIN" serve
    ) 2>"$SERVICE_LOG" &
    SERVICE_PID=$!
    SERVICE_PORT=""
    local waited
    for waited in $(seq 600); do
        kill -0 "$SERVICE_PID" 2>/dev/null || { tail "$SERVICE_LOG" >&2; die "the service exited"; }
        SERVICE_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$SERVICE_LOG" | head -1)
        [[ -n $SERVICE_PORT ]] && break
        sleep 0.1
    done
    [[ -n $SERVICE_PORT ]] || { tail "$SERVICE_LOG" >&2; die "the service did not start listening"; }
    # The pool opens its connections in the background; idle means after that.
    for waited in $(seq 100); do
        (($(service_connections) >= workers)) && break
        sleep 0.1
    done
    sleep 1
    log "service pid $SERVICE_PID on port $SERVICE_PORT, $workers workers, RUST_LOG=$filter"
    [[ $(curl -s "http://127.0.0.1:$SERVICE_PORT/ping") == '{"Status":"OK"}' ]] || die "GET /ping did not answer"
}

service_connections() {
    admin_sql "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB_NAME'"
}

stop_service() {
    [[ -n $SERVICE_PID ]] || return 0
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    local waited
    for waited in $(seq 50); do
        kill -0 "$SERVICE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
}

# A field of /proc/PID/status of the service: VmRSS, VmHWM (kB), Threads.
service_status() {
    awk -v field="$1:" '$1 == field { print $2 }' "/proc/$SERVICE_PID/status"
}

# Restarts the peak (VmHWM) count, where the kernel allows it.
reset_peak_rss() {
    echo 5 >"/proc/$SERVICE_PID/clear_refs" 2>/dev/null
}

start_sampler() {
    local file=$1 pid=$SERVICE_PID
    (
        while [[ -r /proc/$pid/status ]]; do
            awk '$1 == "VmRSS:" { rss = $2 } $1 == "Threads:" { threads = $2 }
                 END { print rss, threads }' "/proc/$pid/status"
            sleep 0.2
        done
    ) >"$file" 2>/dev/null &
    SAMPLER_PID=$!
}

stop_sampler() {
    [[ -n $SAMPLER_PID ]] || return 0
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
}

# --- measuring ---------------------------------------------------------------

# "busy steal total" jiffies of the whole machine, from /proc/stat: busy
# leaves out idle, I/O wait and steal (time the virtual machine's host gave
# to others while this machine wanted to run).
cpu_counters() {
    awk '$1 == "cpu" { total = 0; for (i = 2; i <= NF; i++) total += $i
                       print total - $5 - $6 - $9, $9, total; exit }' /proc/stat
}

# utime + stime of a process, in clock ticks.
process_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}

# measure ID OUTPUT_FILE COMMAND...
# Runs the load generator and splits the CPU time it took, in percent of one
# core, between the generator, the service and the rest (PostgreSQL and any
# other process).
measure() {
    local id=$1 output=$2
    shift 2
    local machine_before machine_after service_before=0 service_after=0 start end times_file
    times_file="$WORK_DIR/times"
    machine_before=$(cpu_counters)
    [[ -n $SERVICE_PID ]] && service_before=$(process_ticks "$SERVICE_PID")
    start=$(date +%s.%N)
    (
        set +e
        "$@" >"$output" 2>&1
        echo "exit status $?" >>"$output"
        times >"$times_file"
    )
    end=$(date +%s.%N)
    machine_after=$(cpu_counters)
    [[ -n $SERVICE_PID ]] && service_after=$(process_ticks "$SERVICE_PID")
    local generator_seconds
    generator_seconds=$(awk 'NR == 2 {
        total = 0
        for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); total += t[1] * 60 + t[2] }
        print total }' "$times_file")
    read -r "CPU_ALL[$id]" "CPU_GEN[$id]" "CPU_SVC[$id]" "CPU_REST[$id]" "CPU_STEAL[$id]" < <(awk \
        -v mb="$machine_before" -v ma="$machine_after" -v sb="$service_before" -v sa="$service_after" \
        -v gen="$generator_seconds" -v wall="$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" \
        -v hz="$CLK_TCK" -v cores="$NPROC" 'BEGIN {
            split(mb, b); split(ma, a)
            all = 100 * cores * (a[1] - b[1]) / (a[3] - b[3])
            steal = 100 * cores * (a[2] - b[2]) / (a[3] - b[3])
            g = 100 * gen / wall
            s = 100 * (sa - sb) / hz / wall
            rest = all - g - s; if (rest < 0) rest = 0
            printf "%.0f %.0f %.0f %.0f %.0f\n", all, g, s, rest, steal }')
}

# run_wrk ID CONNECTIONS PATH [unique|hot]
run_wrk() {
    local id=$1 connections=$2 path=$3 body=${4:-}
    local output="$RAW_DIR/$id.wrk.txt"
    local request="GET $path"
    [[ -n $body ]] && request="POST $path, $body values"
    log "wrk $id: $connections connections, ${DURATION}s, $request"
    start_sampler "$RAW_DIR/$id.rss.txt"
    measure "$id" "$output" env WRK_BODY="$body" WRK_TAG="$id-$$" \
        wrk --latency -t "$WRK_THREADS" -c "$connections" -d "${DURATION}s" \
        -s bench/wrk.lua "http://127.0.0.1:$SERVICE_PORT$path"
    stop_sampler
    grep -q '^BENCH ' "$output" || { cat "$output" >&2; die "wrk failed"; }
    local requests duration p50 p99 errors
    read -r requests duration p50 p99 errors < <(awk '$1 == "BENCH" {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["requests"], v["duration_us"], v["p50_us"], v["p99_us"],
              v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"] }' "$output")
    RPS[$id]=$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    P50[$id]=$(awk -v v="$p50" 'BEGIN { printf "%.2f", v / 1000 }')
    P99[$id]=$(awk -v v="$p99" 'BEGIN { printf "%.2f", v / 1000 }')
    ERRORS[$id]=$errors
    ROWS[$id]=${CURRENT_ROWS:-}
    read -r "PEAK_RSS[$id]" "PEAK_THREADS[$id]" < <(awk '$1 > r { r = $1 } $2 > t { t = $2 }
        END { print r + 0, t + 0 }' "$RAW_DIR/$id.rss.txt")
    RUN_ORDER+=("$id")
    log "  ${RPS[$id]} req/s, p50 ${P50[$id]} ms, p99 ${P99[$id]} ms, ${ERRORS[$id]} errors"
}

# run_pgbench ID SCRIPT CLIENTS [PROTOCOL]
# PROTOCOL is prepared (the default: parsed and planned once per connection,
# as Diesel does for the service's read) or extended (parsed and planned on
# every call, as Diesel does for the service's write, a raw SQL statement).
run_pgbench() {
    local id=$1 script=$2 clients=$3 protocol=${4:-prepared}
    local output="$RAW_DIR/$id.pgbench.txt"
    log "pgbench $id: $script, $clients clients, -M $protocol, ${DURATION}s"
    PROTOCOL[$id]=$protocol
    measure "$id" "$output" pgbench -n -M "$protocol" -c "$clients" -j "$PGBENCH_THREADS" \
        -T "$DURATION" -f "bench/sql/$script.sql" "$DB_URL"
    RPS[$id]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$output" | awk '{ printf "%.0f", $1 }')
    LATENCY_AVG[$id]=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$output")
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$output")
    if ! grep -q '^exit status 0$' "$output" || [[ -z ${RPS[$id]} ]]; then
        log "  pgbench did not finish cleanly; see $output"
        failed=$((${failed:-0} + 1))
        RPS[$id]=${RPS[$id]:-0}
    fi
    ERRORS[$id]=${failed:-0}
    ROWS[$id]=${CURRENT_ROWS:-}
    RUN_ORDER+=("$id")
    log "  ${RPS[$id]} tps, ${ERRORS[$id]} failed"
}

# --- the data ----------------------------------------------------------------

# fill_messages COUNT: adds rows straight in SQL up to COUNT, then has the
# service's recount command rebuild the counter shards.
fill_messages() {
    local target=$1 current
    current=$(bench_sql 'SELECT count(*) FROM message')
    log "filling message with $((target - current)) rows (to $target)"
    bench_sql "INSERT INTO message (value) SELECT 'seed-' || g FROM generate_series($((current + 1)), $target) AS g"
    local recounted
    recounted=$(cd "$WORK_DIR" && env -i PATH="$PATH" DATABASE_URL="$DB_URL" RUST_LOG=warn "$BIN" recount)
    [[ $recounted == "$target messages" ]] || die "recount said '$recounted', expected $target messages"
    settle_database
    local answer
    answer=$(curl -s "http://127.0.0.1:$SERVICE_PORT/")
    [[ $answer == "Hello, Docker! ($target)" ]] || die "GET / answered '$answer' at $target rows"
}

# A steady database for the next runs: visibility map set (as autovacuum
# would leave it), fresh statistics, dirty pages written out.
settle_database() {
    bench_sql 'VACUUM (ANALYZE) message' >/dev/null
    bench_sql 'VACUUM (ANALYZE) message_count' >/dev/null
    bench_sql 'CHECKPOINT' >/dev/null
}

# Rewrites message_count without its dead row versions; nothing else may
# hold the table. Before the service's first start there is no table yet.
compact_counter_table() {
    if [[ -n $(bench_sql "SELECT to_regclass('message_count')") ]]; then
        bench_sql 'VACUUM FULL message_count' >/dev/null
    fi
}

# The counter must match the rows after the service's own writes.
check_counter() {
    local rows counted
    rows=$(bench_sql 'SELECT count(*) FROM message')
    counted=$(bench_sql 'SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM message_count')
    [[ $rows == "$counted" ]] || die "message has $rows rows but the counter says $counted"
    log "counter consistent with $rows rows"
}

# --- the runs ----------------------------------------------------------------

# Label of a row count, as used in run ids.
rows_label() {
    case $1 in
        0) echo 0 ;;
        10000) echo 10k ;;
        1000000) echo 1m ;;
        *) echo "$1" ;;
    esac
}

# The service's runs at one row count; pgbench runs with the service stopped,
# so that its pool takes no connection slot and no CPU.
measure_reads() {
    local rows=$1 label c
    label=$(rows_label "$rows")
    CURRENT_ROWS=$rows
    for c in "${CONNECTIONS[@]}"; do run_wrk "get-$label-$c" "$c" /; done
    pause_service
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-read-$label-$c" read_shards "$c"; done
    if ((rows == 0)); then
        for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-sum-$label-$c" sum_shards "$c"; done
    fi
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-count-$label-$c" count_rows "$c"; done
    start_service 16 "$SERVICE_FILTER" "$RAW_DIR/service-$label.log"
    warm_up
}

measure_service_writes() {
    local c
    CURRENT_ROWS=$(bench_sql 'SELECT count(*) FROM message')
    for c in "${CONNECTIONS[@]}"; do run_wrk "send-unique-$c" "$c" /send unique; done
    for c in "${CONNECTIONS[@]}"; do run_wrk "send-hot-$c" "$c" /send hot; done
    check_counter
}

measure_pgbench_writes() {
    local c
    settle_database
    CURRENT_ROWS=$(bench_sql 'SELECT count(*) FROM message')
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-send-new-$c" send_new "$c" extended; done
    run_pgbench pg-send-new-prepared-16 send_new 16
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-upsert-unique-$c" upsert_unique "$c"; done
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-send-hot-$c" send_hot "$c" extended; done
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-upsert-hot-$c" upsert_hot "$c"; done
    for c in "${CONNECTIONS[@]}"; do run_pgbench "pg-send-tx-$c" send_transaction "$c"; done
}

# Keeps the highest VmHWM of the service's instances for the report.
note_peak_rss() {
    local hwm
    hwm=$(service_status VmHWM)
    ((hwm > ${MEM[peak-hwm]:-0})) && MEM[peak-hwm]=$hwm
    return 0
}

pause_service() {
    note_peak_rss
    stop_service
}

# A short run that is not recorded: the first requests prepare statements.
warm_up() {
    wrk -t "$WRK_THREADS" -c 16 -d 1s "http://127.0.0.1:$SERVICE_PORT/" >/dev/null
}

# The memory a body far over the limit costs: the body is refused with 413
# from its declared length. curl first asks with "Expect: 100-continue" and
# sends nothing more; the second request sends all 20 MB regardless.
measure_big_body() {
    local file="$WORK_DIR/big-body.json"
    {
        printf '{"value":"'
        head -c $((BIG_BODY_BYTES - 13)) /dev/zero | tr '\0' a
        printf '"}'
    } >"$file"
    local name extra
    for name in expect pushed; do
        extra=()
        [[ $name == pushed ]] && extra=(-H 'Expect:')
        reset_peak_rss && MEM[hwm-reset]=yes || MEM[hwm-reset]=no
        MEM[body-$name-before]=$(service_status VmRSS)
        MEM[body-$name-code]=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
            -H 'Content-Type: application/json' "${extra[@]}" --data-binary @"$file" \
            "http://127.0.0.1:$SERVICE_PORT/send" || true)
        sleep 1
        MEM[body-$name-after]=$(service_status VmRSS)
        MEM[body-$name-hwm]=$(service_status VmHWM)
        local before=${MEM[body-$name-before]} after=${MEM[body-$name-after]} peak=${MEM[body-$name-hwm]}
        ((after > peak)) && peak=$after
        MEM[body-$name-increase]=$((peak - before))
        log "20 MB body ($name): HTTP ${MEM[body-$name-code]}, RSS ${MEM[body-$name-before]} -> ${MEM[body-$name-after]} kB, peak ${MEM[body-$name-hwm]} kB"
    done
}

run_full() {
    start_service 16 "$SERVICE_FILTER" "$RAW_DIR/service.log"
    MEM[idle-rss]=$(service_status VmRSS)
    MEM[idle-threads]=$(service_status Threads)
    MEM[idle-anon]=$(service_status RssAnon)
    MEM[idle-file]=$(service_status RssFile)
    log "idle: RSS ${MEM[idle-rss]} kB, ${MEM[idle-threads]} threads"
    warm_up

    local c
    CURRENT_ROWS=0
    for c in "${CONNECTIONS[@]}"; do run_wrk "ping-$c" "$c" /ping; done
    measure_reads 0
    fill_messages 10000
    measure_reads 10000
    fill_messages 1000000
    measure_reads 1000000
    measure_service_writes

    MEM[peak-64]=0
    MEM[peak-threads]=0
    local id
    for id in "${RUN_ORDER[@]}"; do
        [[ $id == pg-* || $id != *-64 ]] && continue
        ((PEAK_RSS[$id] > MEM[peak-64])) && MEM[peak-64]=${PEAK_RSS[$id]}
        ((PEAK_THREADS[$id] > MEM[peak-threads])) && MEM[peak-threads]=${PEAK_THREADS[$id]}
    done
    note_peak_rss
    log "peak: RSS ${MEM[peak-64]} kB sampled under 64 connections, VmHWM ${MEM[peak-hwm]} kB"
    measure_big_body
    stop_service
    measure_pgbench_writes

    # The cost of the default logging: one line per request, to a file.
    local info_log="$WORK_DIR/info.log"
    start_service 16 info "$info_log"
    CURRENT_ROWS=$(bench_sql 'SELECT count(*) FROM message')
    run_wrk log-ping-64 64 /ping
    run_wrk log-get-16 16 /
    stop_service
    MEM[info-log-bytes]=$(stat -c %s "$info_log")
    MEM[info-log-lines]=$(wc -l <"$info_log")
}

# Each WORKERS value is measured in two passes, the second in reverse order,
# so that a drift of the machine shows rather than favouring one value. The
# counter table grows with every write (dead row versions that the sum has
# to read past); it is rewritten before each service start so that every
# value starts alike.
run_tune() {
    local pass workers
    local -a order
    CURRENT_ROWS=0
    for pass in 1 2; do
        order=("${TUNE_WORKERS[@]}")
        ((pass == 2)) && mapfile -t order < <(printf '%s\n' "${TUNE_WORKERS[@]}" | sort -rn)
        for workers in "${order[@]}"; do
            compact_counter_table
            start_service "$workers" "$SERVICE_FILTER" "$RAW_DIR/service-$workers-$pass.log"
            MEM[idle-rss-$workers-$pass]=$(service_status VmRSS)
            MEM[idle-threads-$workers-$pass]=$(service_status Threads)
            warm_up
            run_wrk "tune-$workers-$pass-get-16" 16 /
            run_wrk "tune-$workers-$pass-send-16" 16 /send unique
            run_wrk "tune-$workers-$pass-ping-64" 64 /ping
            stop_service
        done
    done
    # The service's migrations have made the tables by now.
    compact_counter_table
    run_pgbench pg-read-16 read_shards 16
    run_pgbench pg-send-new-16 send_new 16 extended
    run_pgbench pg-upsert-unique-16 upsert_unique 16
}

# --- the report --------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }

machine_section() {
    local cpu memory pg wrk_version
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    memory=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    pg=$(admin_sql 'SHOW server_version')
    wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
    cat <<EOF
| | |
| --- | --- |
| Date | $(date '+%Y-%m-%d %H:%M %Z') |
| Command | \`$COMMAND_LINE\` |
| Built from | $COMMIT |
| Machine | $NPROC cores ($cpu), $memory, Linux $(uname -r) |
| PostgreSQL | $pg, on the same machine |
| Load generators | wrk $wrk_version ($WRK_THREADS threads), $(pgbench --version | awk '{ print $1, $3 }') ($PGBENCH_THREADS threads) |
| Each run | ${DURATION} s |
| Service logging | \`RUST_LOG=$SERVICE_FILTER\`: warnings and errors only (the start-up line gives the port) |
| Machine busy before measuring | $BUSY_BEFORE% |

wrk, pgbench, the service and PostgreSQL share the machine's $NPROC cores.
EOF
}

wrk_row() {
    local id=$1 request=$2 counterpart=${3:-}
    local base="" pg_rps="" pg_ratio=""
    if [[ -n $counterpart && -n ${RPS[$counterpart]:-} ]]; then
        pg_rps=${RPS[$counterpart]}
        pg_ratio=$(ratio "${RPS[$id]}" "$pg_rps")
    fi
    base="| $request | ${ROWS[$id]} | ${id##*-} | ${RPS[$id]} | ${P50[$id]} | ${P99[$id]} | ${ERRORS[$id]} |"
    echo "$base ${pg_rps:--} | ${pg_ratio:--} |"
}

service_table() {
    echo "| Request | Rows | Connections | req/s | p50 ms | p99 ms | Errors | pgbench tps, the service's SQL | Service / pgbench |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local c label
    for c in "${CONNECTIONS[@]}"; do wrk_row "ping-$c" "GET /ping"; done
    for label in 0 10k 1m; do
        for c in "${CONNECTIONS[@]}"; do wrk_row "get-$label-$c" "GET /" "pg-read-$label-$c"; done
    done
    for c in "${CONNECTIONS[@]}"; do wrk_row "send-unique-$c" "POST /send, new values" "pg-send-new-$c"; done
    for c in "${CONNECTIONS[@]}"; do wrk_row "send-hot-$c" "POST /send, one value" "pg-send-hot-$c"; done
    echo
    echo "The pgbench column runs what the service sends for that request:" \
        "read_shards.sql (prepared) for GET /, send_new.sql and send_hot.sql (extended) for POST /send."
}

pgbench_table() {
    echo "| SQL (bench/sql/) | Protocol | Rows | Clients | tps | Average latency ms | Failed |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    local id script
    for id in "${RUN_ORDER[@]}"; do
        [[ $id == pg-* ]] || continue
        case $id in
            pg-read-*) script="read_shards.sql (GET /, the service's read)" ;;
            pg-sum-*) script="sum_shards.sql (GET /, summed in SQL)" ;;
            pg-count-*) script="count_rows.sql (naive count, for contrast)" ;;
            pg-send-new-*) script="send_new.sql (POST /send, the service's write)" ;;
            pg-upsert-unique-*) script="upsert_unique.sql (insert only: the target's baseline)" ;;
            pg-send-hot-*) script="send_hot.sql (POST /send of one value, the service's write)" ;;
            pg-upsert-hot-*) script="upsert_hot.sql (insert only)" ;;
            pg-send-tx-*) script="send_transaction.sql (two statements in a transaction)" ;;
        esac
        echo "| $script | ${PROTOCOL[$id]} | ${ROWS[$id]} | ${id##*-} | ${RPS[$id]} | ${LATENCY_AVG[$id]} | ${ERRORS[$id]} |"
    done
}

cpu_table() {
    echo "| Run | Whole machine | Load generator | Service | PostgreSQL and the rest | Stolen by the host |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    local id
    for id in "${RUN_ORDER[@]}"; do
        echo "| $id | ${CPU_ALL[$id]}% | ${CPU_GEN[$id]}% | ${CPU_SVC[$id]}% | ${CPU_REST[$id]}% | ${CPU_STEAL[$id]}% |"
    done
}

memory_table() {
    cat <<EOF
| Measure | Value |
| --- | ---: |
| RSS idle, after start-up | $(mib "${MEM[idle-rss]}") MiB (${MEM[idle-rss]} kB) |
| of which anonymous memory (RssAnon) | $(mib "${MEM[idle-anon]}") MiB |
| of which mapped files: the binary and its libraries (RssFile) | $(mib "${MEM[idle-file]}") MiB |
| Threads idle | ${MEM[idle-threads]} |
| RSS peak sampled under 64 connections (every 0.2 s) | $(mib "${MEM[peak-64]}") MiB (${MEM[peak-64]} kB) |
| VmHWM after all load runs | $(mib "${MEM[peak-hwm]}") MiB (${MEM[peak-hwm]} kB) |
| Threads peak under 64 connections | ${MEM[peak-threads]} |
| 20 MB body, \`Expect: 100-continue\` (curl's default): status | ${MEM[body-expect-code]} |
| 20 MB body, \`Expect: 100-continue\`: RSS before, after, peak | ${MEM[body-expect-before]}, ${MEM[body-expect-after]}, ${MEM[body-expect-hwm]} kB |
| 20 MB body sent whole (\`-H 'Expect:'\`): status | ${MEM[body-pushed-code]} |
| 20 MB body sent whole: RSS before, after, peak | ${MEM[body-pushed-before]}, ${MEM[body-pushed-after]}, ${MEM[body-pushed-hwm]} kB |
EOF
    if [[ ${MEM[hwm-reset]} == no ]]; then
        echo
        echo "The kernel refused to reset VmHWM, so the body's peak is the lifetime peak."
    fi
}

logging_table() {
    echo "| Request | Connections | req/s, RUST_LOG=$SERVICE_FILTER | req/s, RUST_LOG=info | Change | p99 ms, warn / info |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    local pair quiet loud
    for pair in "ping-64 log-ping-64 GET /ping" "get-0-16 log-get-16 GET /"; do
        read -r quiet loud _ <<<"$pair"
        local request=${pair#* * }
        echo "| $request | ${quiet##*-} | ${RPS[$quiet]} | ${RPS[$loud]} |" \
            "$(awk -v a="${RPS[$loud]}" -v b="${RPS[$quiet]}" 'BEGIN { printf "%+.0f%%", 100 * (a - b) / b }') |" \
            "${P99[$quiet]} / ${P99[$loud]} |"
    done
    echo
    echo "The info run wrote ${MEM[info-log-lines]} lines ($(mib $((MEM[info-log-bytes] / 1024))) MiB) to a file on the local disk."
}

targets_table() {
    local c label worst_read="" worst_read_ratio=99 r total_errors=0 id
    echo "| Target | Measured | Result |"
    echo "| --- | --- | --- |"

    local p50_ok=true detail=""
    for c in "${CONNECTIONS[@]}"; do
        r=$(ratio "${P50[get-1m-$c]}" "${P50[get-0-$c]}")
        at_least 2 "$r" || p50_ok=false
        detail+="${detail:+; }$c conn.: ${P50[get-1m-$c]} / ${P50[get-0-$c]} ms = ${r}x"
    done
    echo "| GET / p50 at 1,000,000 rows within 2x of 0 rows | $detail | $(verdict $p50_ok) |"

    for label in 0 10k 1m; do
        r=$(ratio "${RPS[get-$label-16]}" "${RPS[pg-read-$label-16]}")
        if awk -v a="$r" -v b="$worst_read_ratio" 'BEGIN { exit !(a < b) }'; then
            worst_read_ratio=$r
            worst_read="$label rows"
        fi
    done
    echo "| GET / at 16 connections >= 0.5 x pgbench running the same read | lowest ${worst_read_ratio} (at $worst_read; each row count in the table); against the sum in SQL at 0 rows: $(ratio "${RPS[get-0-16]}" "${RPS[pg-sum-0-16]}") | $(verdict at_least "$worst_read_ratio" 0.5) |"

    r=$(ratio "${RPS[send-unique-16]}" "${RPS[pg-upsert-unique-16]}")
    echo "| POST /send new values at 16 connections >= 0.6 x pgbench one-statement upsert | ${RPS[send-unique-16]} / ${RPS[pg-upsert-unique-16]} = $r | $(verdict at_least "$r" 0.6) |"

    r=$(ratio "${RPS[ping-64]}" "$GO_PING_RPS")
    echo "| GET /ping at 64 connections >= Go original ($GO_PING_RPS req/s, an earlier measurement) | ${RPS[ping-64]} req/s = ${r}x | $(verdict at_least "${RPS[ping-64]}" "$GO_PING_RPS") |"

    for id in "${RUN_ORDER[@]}"; do total_errors=$((total_errors + ERRORS[$id])); done
    echo "| No errors in any run (wrk: socket errors and non-2xx/3xx; pgbench: failed transactions) | $total_errors in ${#RUN_ORDER[@]} runs | $(verdict test "$total_errors" -eq 0) |"

    echo "| RSS idle <= 10 MiB | $(mib "${MEM[idle-rss]}") MiB | $(verdict test "${MEM[idle-rss]}" -le 10240) |"
    local peak=${MEM[peak-64]}
    ((MEM[peak-hwm] > peak)) && peak=${MEM[peak-hwm]}
    echo "| RSS under 64 connections <= 32 MiB | $(mib "$peak") MiB (the larger of the samples and VmHWM) | $(verdict test "$peak" -le 32768) |"
    local body=${MEM[body-expect-increase]}
    ((MEM[body-pushed-increase] > body)) && body=${MEM[body-pushed-increase]}
    local body_ok=false
    [[ ${MEM[body-expect-code]} == 413 && ${MEM[body-pushed-code]} == 413 ]] && ((body < 2048)) && body_ok=true
    echo "| A rejected 20 MB body (413) raises RSS by < 2 MiB | +${MEM[body-expect-increase]} kB asked, +${MEM[body-pushed-increase]} kB sent whole; HTTP ${MEM[body-expect-code]}, ${MEM[body-pushed-code]} | $(verdict $body_ok) |"
}

tune_table() {
    echo "| WORKERS (= pool) | Pass | Idle RSS MiB | Threads idle | GET / req/s | p50 ms | p99 ms | POST /send req/s | p50 ms | p99 ms | GET /ping, 64 conn. req/s | Errors |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local w pass get send ping
    for w in "${TUNE_WORKERS[@]}"; do
        for pass in 1 2; do
            get=tune-$w-$pass-get-16 send=tune-$w-$pass-send-16 ping=tune-$w-$pass-ping-64
            echo "| $w | $pass | $(mib "${MEM[idle-rss-$w-$pass]}") | ${MEM[idle-threads-$w-$pass]} |" \
                "${RPS[$get]} | ${P50[$get]} | ${P99[$get]} |" \
                "${RPS[$send]} | ${P50[$send]} | ${P99[$send]} | ${RPS[$ping]} |" \
                "$((ERRORS[$get] + ERRORS[$send] + ERRORS[$ping])) |"
        done
    done
    echo
    local request
    for request in get-16 send-16 ping-64; do
        local best="" best_rps=0 mean
        for w in "${TUNE_WORKERS[@]}"; do
            mean=$(((RPS[tune-$w-1-$request] + RPS[tune-$w-2-$request]) / 2))
            ((mean > best_rps)) && best_rps=$mean best=$w
        done
        echo "- Best mean for $request: WORKERS=$best, $best_rps req/s."
    done
    echo
    echo "pgbench at 16 clients, for reference: the service's read ${RPS[pg-read-16]} tps," \
        "the service's write ${RPS[pg-send-new-16]} tps, insert only ${RPS[pg-upsert-unique-16]} tps" \
        "(failed: $((ERRORS[pg-read-16] + ERRORS[pg-send-new-16] + ERRORS[pg-upsert-unique-16])))."
}

write_report() {
    {
        if [[ $MODE == tune ]]; then
            echo "# ping-roach tuning run, $STAMP"
            echo
            machine_section
            echo
            echo "## WORKERS (GET / and POST /send at 16 connections, GET /ping at 64)"
            echo
            tune_table
        else
            echo "# ping-roach benchmark, $STAMP"
            echo
            machine_section
            echo
            echo "## Service (wrk) against pgbench running the same SQL"
            echo
            service_table
            echo
            echo "## pgbench"
            echo
            pgbench_table
            echo
            echo "## Memory"
            echo
            memory_table
            echo
            echo "## Logging at the default level (info)"
            echo
            logging_table
            echo
            echo "## CPU during each run (percent of one core; ${NPROC}00% is the whole machine)"
            echo
            cpu_table
            echo
            echo "## Targets"
            echo
            targets_table
        fi
    } >"$RESULTS_MD"
    write_tsv
    cat "$RESULTS_MD"
    log "report: $RESULTS_MD (raw output in $RAW_DIR)"
}

# The same figures, one run a line, for bench/chart.py.
write_tsv() {
    local id
    {
        printf 'id\trows\trps\tp50_ms\tp99_ms\terrors\tcpu_all\tcpu_generator\tcpu_service\tcpu_rest\tcpu_steal\n'
        for id in "${RUN_ORDER[@]}"; do
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "${ROWS[$id]}" "${RPS[$id]}" \
                "${P50[$id]:-}" "${P99[$id]:-}" "${ERRORS[$id]}" \
                "${CPU_ALL[$id]}" "${CPU_GEN[$id]}" "${CPU_SVC[$id]}" "${CPU_REST[$id]}" "${CPU_STEAL[$id]}"
        done
    } >"$RESULTS_DIR/$STAMP.tsv"
}

main() {
    parse_arguments "$@"
    COMMAND_LINE="BENCH_DURATION=$DURATION bench/run.sh${1:+ $1}"
    # The start-up line carries the port; request lines (info) stay off.
    SERVICE_FILTER="warn,ping_roach::cli=info"
    [[ $MODE == tune ]] && STAMP="$STAMP-tune"
    RESULTS_MD="$RESULTS_DIR/$STAMP.md"
    RAW_DIR="$RESULTS_DIR/$STAMP"
    mkdir -p "$RAW_DIR"
    WORK_DIR=$(mktemp -d)
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    ensure_tools
    build
    ensure_postgres
    create_database
    wait_for_quiet_machine
    if [[ $MODE == tune ]]; then run_tune; else run_full; fi
    write_report
}

main "$@"
