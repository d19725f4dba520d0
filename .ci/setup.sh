#!/usr/bin/env bash
# Prepare a checkout on a fresh machine: a virtualenv in .venv with runlife installed.
#
#   bash .ci/setup.sh        runlife itself (enough for `runlife demo`)
#   bash .ci/setup.sh dev    everything the test suite, linters and docs need, and
#                            PostgreSQL server binaries for the postgres store tests
#
# Both README commands start here, and so does .ci/run. On Debian and Ubuntu the
# python3 package comes without venv; as root we install it (python3-venv) rather
# than fail, because "a fresh machine" is exactly where that happens.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-package}
case "$mode" in
    package) extras="[cli]" ;;  # the runlife command, with its tables (rich)
    dev) extras="[dev]" ;;
    *) echo "setup.sh: unknown mode '$mode' (use: package | dev)" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup.sh: runlife needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)." >&2
    echo "setup.sh: set PYTHON=/path/to/python3.11 (or newer) and run again." >&2
    exit 1
fi

if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "setup.sh: $PYTHON has no venv module: installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq python3-venv >/dev/null
        else
            echo "setup.sh: $PYTHON cannot create virtualenvs (no ensurepip);" \
                "install its venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    echo "setup.sh: creating .venv with $("$PYTHON" --version)"
    rm -rf .venv  # a half-made venv (no pip) from an earlier failed attempt
    "$PYTHON" -m venv .venv
fi

echo "setup.sh: installing runlife${extras} (editable) into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"

# The monitor page's browser test drives Debian's Chromium through Playwright
# (Playwright's own browser downloads are not reachable from CI).
if [ "$mode" = dev ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: installing chromium with apt-get (for the browser test)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "setup.sh: the browser test needs /usr/bin/chromium (apt-get install chromium)" >&2
    fi
fi

if [ "$mode" = dev ] && [ -f .ci/postgres.sh ]; then
    bash .ci/postgres.sh
fi
echo "setup.sh: ready ($mode)"
