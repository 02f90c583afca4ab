#!/usr/bin/env bash
# Checks that the release binary needs no shared library the distroless runtime image lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/release/ping-roach}

# What gcr.io/distroless/cc-debian12 ships, from GoogleContainerTools/distroless:
# base/config.bzl gives the Debian 12 base image libc6 and libssl3, and
# cc/config.bzl adds libgcc-s1, libstdc++6, libgomp1 and gcc-12-base. zlib1g
# is in the Debian 13 images only, so libz.so.1 is not allowed here.
allowed=(
    # libc6
    ld-linux-x86-64.so.2 ld-linux-aarch64.so.1
    libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1
    libresolv.so.2 libutil.so.1 libanl.so.1
    # libssl3
    libssl.so.3 libcrypto.so.3
    # libgcc-s1, libstdc++6, libgomp1
    libgcc_s.so.1 libstdc++.so.6 libgomp.so.1
)
# The newest symbol versions Debian 12 provides: glibc 2.36 and OpenSSL 3.0.
# A binary built on a newer system can need newer ones and then fail to start
# in the image, though every library name above is right.
max_glibc=2.36
max_openssl=3.0.0

if [[ ! -x "$binary" ]]; then
    echo "building $binary"
    cargo build --release --locked
fi

needed=$(readelf --dynamic --wide "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
mapfile -t libraries <<<"$needed"
echo "$binary needs:"
printf '  %s\n' "${libraries[@]}"

failed=0
for library in "${libraries[@]}"; do
    [[ -z "$library" ]] && continue
    case "$library" in
        libpq.so* | libsqlite3.so*)
            echo "FAIL: $library is needed, but libpq and SQLite must be compiled in (the bundled features)" >&2
            failed=1
            continue
            ;;
    esac
    found=0
    for ok in "${allowed[@]}"; do
        [[ "$library" == "$ok" ]] && found=1 && break
    done
    if [[ $found -eq 0 ]]; then
        echo "FAIL: $library is not in gcr.io/distroless/cc-debian12" >&2
        failed=1
    fi
done

# Highest version a symbol needs from a library family, e.g. GLIBC_2.34.
newest_version() {
    readelf --dyn-syms --wide "$binary" \
        | { grep -o "@$1_[0-9][0-9.]*" || true; } \
        | sed "s/@$1_//" \
        | sort -V | tail -n 1
}
check_version() {
    local family=$1 limit=$2 newest
    newest=$(newest_version "$family")
    [[ -z "$newest" ]] && return 0
    echo "newest $family symbol version: $newest (Debian 12 has $limit)"
    if [[ "$(printf '%s\n%s\n' "$newest" "$limit" | sort -V | tail -n 1)" != "$limit" ]]; then
        echo "FAIL: needs ${family}_$newest, newer than Debian 12's $limit" >&2
        failed=1
    fi
}
check_version GLIBC "$max_glibc"
check_version OPENSSL "$max_openssl"

if [[ $failed -ne 0 ]]; then
    echo "check-binary-libs: FAILED" >&2
    exit 1
fi
echo "check-binary-libs: every library is in the runtime image"
