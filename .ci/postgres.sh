#!/bin/sh
# Make sure PostgreSQL server binaries are installed, for the test suite's throwaway
# servers (tests/pgserver.py). Idempotent: does nothing when a server is present.
#
# Debian's postgresql package would create and start a "main" cluster on install;
# the tests never use it, so createcluster.d turns that off first. pg_trgm (used
# for log search) ships inside Debian 12's postgresql-15 package itself (it
# "Provides: postgresql-contrib-15"), so no contrib package is needed.
set -eu

found() {
    for bin in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$bin" ] && { echo "$bin"; return 0; }
    done
    return 1
}

if bin=$(found); then
    echo "postgres.sh: PostgreSQL already installed: $(dirname "$bin") (nothing to do)"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "postgres.sh: PostgreSQL is not installed and installing it needs root" >&2
        exit 1
    fi
    echo "postgres.sh: no /usr/lib/postgresql/*/bin: installing PostgreSQL with apt-get"
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/runlife.conf
    echo "postgres.sh: wrote /etc/postgresql-common/createcluster.d/runlife.conf (no main cluster)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
    bin=$(found) || { echo "postgres.sh: install finished but no initdb found" >&2; exit 1; }
    echo "postgres.sh: installed $(dirname "$bin")"
fi

share=$("$(dirname "$bin")/pg_config" --sharedir 2>/dev/null || true)
if [ -n "$share" ] && [ ! -f "$share/extension/pg_trgm.control" ]; then
    echo "postgres.sh: warning: pg_trgm is missing ($share/extension); log search falls back to ILIKE"
fi
if ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: warning: no 'postgres' user; tests/pgserver.py needs it when run as root" >&2
fi
