# Sourced by .ci/run: starts redis-server and PostgreSQL on free 127.0.0.1 ports for the fleet tests, exports
# AB_TEST_REDIS_URL and AB_TEST_POSTGRES_URL (tests/fleet/conftest.py reads them), stops both on exit (trap).
# PostgreSQL refuses to run as root: initdb and pg_ctl run as the `postgres` user on a folder that user owns.

ci_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ci_as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

CI_SERVERS_DIR="$(mktemp -d)"
CI_REDIS_PID=""
CI_PG_STARTED=""

ci_stop_servers() {
    if [ -n "$CI_REDIS_PID" ]; then kill "$CI_REDIS_PID" 2>/dev/null || true; fi
    if [ -n "$CI_PG_STARTED" ]; then ci_as_postgres pg_ctl -D "$CI_SERVERS_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$CI_SERVERS_DIR"
}
trap ci_stop_servers EXIT

ci_start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
    fi
    local port
    port="$(ci_free_port)"
    mkdir -p "$CI_SERVERS_DIR/redis"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$CI_SERVERS_DIR/redis" \
        --daemonize no --loglevel warning >"$CI_SERVERS_DIR/redis.log" 2>&1 &
    CI_REDIS_PID=$!
    for _ in $(seq 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    export AB_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

ci_start_postgres() {
    local port
    port="$(ci_free_port)"
    chown postgres "$CI_SERVERS_DIR" 2>/dev/null || true
    ci_as_postgres initdb -D "$CI_SERVERS_DIR/pg" -A trust -U postgres >/dev/null
    ci_as_postgres pg_ctl -D "$CI_SERVERS_DIR/pg" -o "-p $port -k $CI_SERVERS_DIR -c listen_addresses=127.0.0.1" \
        -l "$CI_SERVERS_DIR/pg.log" -w start >/dev/null
    CI_PG_STARTED=1
    export AB_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

ci_start_redis
ci_start_postgres
