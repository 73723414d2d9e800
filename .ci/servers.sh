# Sourced by .ci/run: starts redis-server and PostgreSQL on free 127.0.0.1 ports for the fleet tests, exports
# AB_TEST_REDIS_URL and AB_TEST_POSTGRES_URL (tests/fleet/servers.py reads them), stops both on exit (trap, also on
# INT/TERM). Sourcing it again in the same shell does nothing while its servers run. A server that does not come up
# stops the script (the tests never skip when CI is set).
# PostgreSQL refuses to run as root: initdb and pg_ctl run as the `postgres` user on a folder that user owns.

if [ -n "${CI_SERVERS_DIR:-}" ] && [ -d "$CI_SERVERS_DIR" ]; then
    return 0  # already started by this shell
fi

ci_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ci_as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

CI_SERVERS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ab-ci.XXXXXX")"
CI_REDIS_PID=""
CI_PG_STARTED=""

ci_stop_servers() {
    if [ -n "$CI_REDIS_PID" ]; then
        kill "$CI_REDIS_PID" 2>/dev/null && wait "$CI_REDIS_PID" 2>/dev/null
        CI_REDIS_PID=""
    fi
    if [ -n "$CI_PG_STARTED" ]; then
        ci_as_postgres pg_ctl -D "$CI_SERVERS_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
        CI_PG_STARTED=""
    fi
    rm -rf "$CI_SERVERS_DIR"
    unset AB_TEST_REDIS_URL AB_TEST_POSTGRES_URL
    return 0
}
trap ci_stop_servers EXIT
trap 'exit 130' INT   # exit runs the EXIT trap: the servers stop on Ctrl-C and kill too
trap 'exit 143' TERM

ci_fail() {
    echo ".ci/servers.sh: $*" >&2
    return 1
}

ci_install_redis() {
    command -v redis-server >/dev/null 2>&1 && return 0
    # policy-rc.d 101: the package must not start a system-wide redis-server (it would outlive this run)
    local policy=/usr/sbin/policy-rc.d made=""
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1; fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >"$CI_SERVERS_DIR/apt.log" 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$CI_SERVERS_DIR/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >>"$CI_SERVERS_DIR/apt.log" 2>&1
    } || status=$?
    if [ -n "$made" ]; then rm -f "$policy"; fi
    if [ "$status" != 0 ] || ! command -v redis-server >/dev/null 2>&1; then
        tail -20 "$CI_SERVERS_DIR/apt.log" >&2
        ci_fail "could not install redis-server (apt-get install -y redis-server)"
        return 1
    fi
}

ci_start_redis() {
    ci_install_redis || return 1
    mkdir -p "$CI_SERVERS_DIR/redis"
    local port attempt
    for attempt in 1 2 3; do  # a free port may be taken by someone else before redis-server binds it
        port="$(ci_free_port)"
        redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$CI_SERVERS_DIR/redis" \
            --daemonize no --loglevel warning >"$CI_SERVERS_DIR/redis.log" 2>&1 &
        CI_REDIS_PID=$!
        for _ in $(seq 100); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                export AB_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
                return 0
            fi
            kill -0 "$CI_REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$CI_REDIS_PID" 2>/dev/null && wait "$CI_REDIS_PID" 2>/dev/null
        CI_REDIS_PID=""
        echo ".ci/servers.sh: redis-server on port $port did not come up (attempt $attempt)" >&2
    done
    tail -20 "$CI_SERVERS_DIR/redis.log" >&2
    ci_fail "redis-server did not start"
}

ci_start_postgres() {
    local port
    port="$(ci_free_port)"
    chown postgres "$CI_SERVERS_DIR" 2>/dev/null || true
    ci_as_postgres initdb -D "$CI_SERVERS_DIR/pg" -A trust -U postgres >"$CI_SERVERS_DIR/initdb.log" 2>&1 || {
        tail -20 "$CI_SERVERS_DIR/initdb.log" >&2
        ci_fail "initdb failed"
        return 1
    }
    CI_PG_STARTED=1  # before the start: a start that timed out may still leave a server to stop
    ci_as_postgres pg_ctl -D "$CI_SERVERS_DIR/pg" \
        -o "-p $port -k $CI_SERVERS_DIR -c listen_addresses=127.0.0.1 -c fsync=off" \
        -l "$CI_SERVERS_DIR/pg.log" -w start >/dev/null 2>&1 || {
        tail -20 "$CI_SERVERS_DIR/pg.log" >&2
        ci_fail "PostgreSQL did not start"
        return 1
    }
    export AB_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

ci_start_redis && ci_start_postgres
