#!/usr/bin/env bash
# Ensure the local infrastructure Kommerce needs is up (idempotent).
#
#   scripts/deps.sh                  # postgres, redis and tansu
#   scripts/deps.sh postgres redis   # only the named ones
#
# Debian, no systemd, no docker. Missing packages are installed with apt-get
# (root only); tansu (Kafka-protocol broker) is installed with cargo.
#
#   postgres  127.0.0.1:5432  postgres://postgres@127.0.0.1:5432/postgres (trust auth)
#   redis     127.0.0.1:6379
#   tansu     127.0.0.1:9092  (in-memory storage by default)
#
# Environment:
#   KOMMERCE_STATE_DIR   state/log dir (default: $HOME/.cache/kommerce)
#   DEPS_SKIP_TANSU=1    skip the Kafka broker
#   DEPS_TANSU_STORAGE   tansu storage engine URL (default: memory://tansu/)
#   DEPS_TANSU_INSTALL_WAIT  seconds to wait for an already running
#                        `cargo install tansu` (default: 1500)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
TANSU_HOST=127.0.0.1
TANSU_PORT=9092
TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,libsql

STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
APT_LOG="$STATE_DIR/apt.log"
TANSU_LOG="$STATE_DIR/tansu.log"
TANSU_PID_FILE="$STATE_DIR/tansu.pid"
TANSU_INSTALL_LOG="$STATE_DIR/tansu-install.log"
CARGO_BIN_DIR="${CARGO_HOME:-$HOME/.cargo}/bin"

ALL_DEPS=(postgres redis tansu)

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
die() {
    printf 'deps.sh: ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

usage() {
    cat <<EOF
usage: $0 [postgres] [redis] [tansu]
Ensures the named local dependencies are running (default: all).
Env: KOMMERCE_STATE_DIR, DEPS_SKIP_TANSU=1, DEPS_TANSU_STORAGE=<url>
EOF
}

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for SECONDS CMD...: poll CMD every 0.5 s until it succeeds or time runs out.
wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

log_tail() { [[ -f $1 ]] && tail -n "${2:-20}" "$1" | sed 's/^/    | /' >&2 || true; }

APT_UPDATED=0
apt_install() {
    is_root || die "need to install '$*' with apt-get but not running as root"
    have apt-get || die "need to install '$*' but apt-get is not available"
    mkdir -p "$STATE_DIR"
    if ((APT_UPDATED == 0)); then
        if ! DEBIAN_FRONTEND=noninteractive apt-get update >>"$APT_LOG" 2>&1; then
            log_tail "$APT_LOG"
            die "apt-get update failed (log: $APT_LOG)"
        fi
        APT_UPDATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >>"$APT_LOG" 2>&1; then
        log_tail "$APT_LOG"
        die "apt-get install -y $* failed (log: $APT_LOG)"
    fi
}

# --------------------------------------------------------------- postgres

pg_ready() {
    have pg_isready && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

pg_psql() { psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

pg_verify() { pg_psql -Atc 'select 1' 2>/dev/null | grep -qx 1; }

# Highest configured cluster version (from /etc/postgresql), empty if none.
pg_cluster_version() {
    [[ -d /etc/postgresql ]] || return 0
    ls /etc/postgresql 2>/dev/null | grep -E '^[0-9]+(\.[0-9]+)?$' | sort -V | tail -n 1
}

# Highest installed server version (from /usr/lib/postgresql), empty if none.
pg_server_version() {
    [[ -d /usr/lib/postgresql ]] || return 0
    local v
    for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rV); do
        [[ -x /usr/lib/postgresql/$v/bin/postgres ]] && { echo "$v"; return 0; }
    done
}

# Trust auth for postgres/root over the unix socket and loopback (first match wins,
# so these lines go on top). Idempotent via the marker.
pg_configure_trust() {
    local ver=$1 hba="/etc/postgresql/$1/main/pg_hba.conf" marker="# kommerce deps.sh: trust"
    [[ -f $hba ]] || die "postgres: $hba not found"
    grep -qF "$marker" "$hba" && return 1
    local tmp
    tmp=$(mktemp)
    {
        echo "$marker (local dev only)"
        echo "local   all   postgres,root                  trust"
        echo "host    all   postgres,root   127.0.0.1/32   trust"
        echo "host    all   postgres,root   ::1/128        trust"
        echo
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keep owner/mode of the original file
    rm -f "$tmp"
}

pg_ensure_root_role() {
    if [[ $(pg_psql -Atc "select 1 from pg_roles where rolname = 'root'") != 1 ]]; then
        pg_psql -c 'create role root superuser login' >/dev/null || die "postgres: could not create role root"
        return 0
    fi
    return 1
}

ensure_postgres() {
    if pg_ready; then
        pg_verify || die "postgres: accepting connections on $PG_HOST:$PG_PORT, but 'psql -h $PG_HOST -U postgres -c \"select 1\"' fails (auth? expected trust for user postgres)"
        say "postgres: already running on $PG_HOST:$PG_PORT"
        return 0
    fi

    local what=() ver
    ver=$(pg_cluster_version)
    if [[ -z $ver ]] || ! have pg_ctlcluster; then
        if [[ -z $(pg_server_version) ]] || ! have pg_ctlcluster; then
            is_root || die "postgres: not installed and not root; run as root or: apt-get install -y postgresql"
            say "postgres: not installed, installing with apt-get..."
            apt_install postgresql
            what+=("installed (apt)")
        fi
        ver=$(pg_cluster_version)
        if [[ -z $ver ]]; then
            ver=$(pg_server_version)
            [[ -n $ver ]] || die "postgres: no server found under /usr/lib/postgresql after install"
            is_root || die "postgres: no cluster configured in /etc/postgresql and not root"
            pg_createcluster "$ver" main >>"$APT_LOG" 2>&1 || die "postgres: pg_createcluster $ver main failed (log: $APT_LOG)"
            what+=("created cluster $ver/main")
        fi
    fi
    [[ -d /etc/postgresql/$ver/main ]] || die "postgres: cluster /etc/postgresql/$ver/main not found"

    # Fresh install: trust auth for postgres/root before we connect.
    if ((${#what[@]} > 0)) && is_root && pg_configure_trust "$ver"; then
        what+=("trust auth configured")
    fi

    if pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
        # Running (e.g. started by the package's postinst): pick up pg_hba changes.
        pg_ctlcluster "$ver" main reload >/dev/null 2>&1 || true
    else
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 ||
            {
                log_tail "/var/log/postgresql/postgresql-$ver-main.log"
                die "postgres: 'pg_ctlcluster --skip-systemctl-redirect $ver main start' failed"
            }
        what+=("started $ver/main")
    fi

    if ! wait_for 30 pg_ready; then
        pg_lsclusters >&2 2>/dev/null || true
        log_tail "/var/log/postgresql/postgresql-$ver-main.log"
        die "postgres: cluster $ver/main not accepting connections on $PG_HOST:$PG_PORT after 30s (check port/listen_addresses)"
    fi

    if ! pg_verify; then
        # Running but we cannot log in as postgres without a password: switch to trust.
        if is_root && pg_configure_trust "$ver"; then
            pg_ctlcluster "$ver" main reload >/dev/null 2>&1 || true
            sleep 1
            what+=("trust auth configured")
        fi
        pg_verify || die "postgres: 'psql -h $PG_HOST -U postgres -c \"select 1\"' fails (see /etc/postgresql/$ver/main/pg_hba.conf)"
    fi
    if is_root && pg_ensure_root_role; then
        what+=("role root created")
    fi

    local msg="running"
    if ((${#what[@]})); then
        msg=$(IFS=,; echo "${what[*]}")
        msg=${msg//,/, }
    fi
    say "postgres: $msg on $PG_HOST:$PG_PORT"
}

# ------------------------------------------------------------------ redis

redis_ping() {
    if have redis-cli; then
        [[ $(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
    else
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && read -r l <&3 && [[ $l == "+PONG"* ]]' \
            _ "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

ensure_redis() {
    if redis_ping; then
        say "redis: already running on $REDIS_HOST:$REDIS_PORT"
        return 0
    fi

    local installed=""
    if ! have redis-server; then
        is_root || die "redis: not installed and not root; run as root or: apt-get install -y redis-server"
        say "redis: not installed, installing with apt-get..."
        apt_install redis-server
        installed="installed (apt) and "
        # The package may have started it already.
        if wait_for 5 redis_ping; then
            say "redis: ${installed}running on $REDIS_HOST:$REDIS_PORT"
            return 0
        fi
    fi

    port_open "$REDIS_HOST" "$REDIS_PORT" &&
        die "redis: something listens on $REDIS_HOST:$REDIS_PORT but does not answer PING with PONG (password? other service?)"

    local dir=/var/lib/redis logdir=/var/log/redis
    if ! is_root; then
        dir="$STATE_DIR/redis"
        logdir="$STATE_DIR"
    fi
    mkdir -p "$dir" "$logdir"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$dir" --logfile "$logdir/kommerce.log" >/dev/null ||
        die "redis: redis-server failed to start (log: $logdir/kommerce.log)"

    if ! wait_for 15 redis_ping; then
        log_tail "$logdir/kommerce.log"
        die "redis: started but no PONG on $REDIS_HOST:$REDIS_PORT after 15s (log: $logdir/kommerce.log)"
    fi
    say "redis: ${installed}started on $REDIS_HOST:$REDIS_PORT"
}

# ------------------------------------------------------------------ tansu

tansu_bin() {
    if [[ -x $CARGO_BIN_DIR/tansu ]]; then
        echo "$CARGO_BIN_DIR/tansu"
    elif have tansu; then
        command -v tansu
    else
        return 1
    fi
}

cargo_install_running() { pgrep -f 'cargo install( .*)? tansu' >/dev/null 2>&1; }

# Packages a failed build asked for, judged from the cargo output.
tansu_missing_build_pkgs() {
    local log=$1 pkgs=()
    grep -qE "linker \`cc\` not found|failed to find tool \"(cc|c\+\+|gcc)\"|(^|/| )(cc|c\+\+|gcc|g\+\+): not found|ToolNotFound" "$log" && pkgs+=(build-essential)
    grep -qiE "is \`cmake\` not installed|cmake: not found|failed to execute command.*cmake|Missing dependency: cmake" "$log" && pkgs+=(cmake)
    grep -qiE "Could not find \`protoc\`|protoc.*(not found|No such file)|failed to invoke protoc" "$log" && pkgs+=(protobuf-compiler)
    grep -qiE "pkg-config.*(not found|command could not be found)|could not run .*pkg-config" "$log" && pkgs+=(pkg-config)
    grep -qiE "Could not find directory of OpenSSL|openssl/[a-z_]+\.h: No such file|failed to run custom build command for \`openssl-sys" "$log" && pkgs+=(libssl-dev pkg-config)
    grep -qiE "Unable to find libclang|couldn't find any valid shared libraries matching: \['libclang" "$log" && pkgs+=(libclang-dev clang)
    ((${#pkgs[@]})) && printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' '
    return 0
}

tansu_install() {
    have cargo || die "tansu: not installed and cargo not found (install Rust with rustup first)"
    mkdir -p "$STATE_DIR"
    local attempt pkgs start=$SECONDS
    for attempt in 1 2; do
        say "tansu: installing with 'cargo install tansu --locked --version $TANSU_VERSION --features $TANSU_FEATURES' (takes 10-15 min; log: $TANSU_INSTALL_LOG)"
        if cargo install tansu --locked --version "$TANSU_VERSION" --features "$TANSU_FEATURES" >"$TANSU_INSTALL_LOG" 2>&1; then
            say "tansu: cargo install finished in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
            return 0
        fi
        pkgs=$(tansu_missing_build_pkgs "$TANSU_INSTALL_LOG")
        if ((attempt == 1)) && [[ -n $pkgs ]] && is_root; then
            say "tansu: build needs system packages: ${pkgs% }; installing with apt-get and retrying"
            # shellcheck disable=SC2086
            apt_install $pkgs
            continue
        fi
        log_tail "$TANSU_INSTALL_LOG" 30
        [[ -n $pkgs ]] && die "tansu: cargo install failed; it looks like it needs: ${pkgs% } (log: $TANSU_INSTALL_LOG)"
        die "tansu: cargo install failed (log: $TANSU_INSTALL_LOG)"
    done
}

tansu_listening() { port_open "$TANSU_HOST" "$TANSU_PORT"; }

# pid of the process listening on the tansu port (empty if unknown).
tansu_listener_pid() {
    have ss || return 0
    ss -Hltnp "sport = :$TANSU_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

ensure_tansu() {
    if [[ ${DEPS_SKIP_TANSU:-0} == 1 ]]; then
        say "tansu: skipped (DEPS_SKIP_TANSU=1)"
        return 0
    fi

    if tansu_listening; then
        local pid=""
        [[ -f $TANSU_PID_FILE ]] && pid=$(<"$TANSU_PID_FILE")
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            say "tansu: already running on $TANSU_HOST:$TANSU_PORT (pid $pid)"
        else
            say "tansu: already running on $TANSU_HOST:$TANSU_PORT (something listens there; reusing it)"
        fi
        return 0
    fi

    local bin what=""
    if ! bin=$(tansu_bin); then
        if cargo_install_running; then
            local wait=${DEPS_TANSU_INSTALL_WAIT:-1500}
            say "tansu: a 'cargo install tansu' is already running; waiting for it (up to $((wait / 60)) min)"
            local deadline=$((SECONDS + wait))
            while cargo_install_running; do
                ((SECONDS < deadline)) || die "tansu: 'cargo install tansu' still running after ${wait}s; try again later"
                sleep 10
            done
        fi
        if bin=$(tansu_bin); then
            what="installed (cargo) and "
        else
            tansu_install
            bin=$(tansu_bin) || die "tansu: cargo install succeeded but no tansu binary in $CARGO_BIN_DIR or PATH"
            what="installed (cargo) and "
        fi
    fi

    local storage=${DEPS_TANSU_STORAGE:-memory://tansu/}
    mkdir -p "$STATE_DIR"
    rm -f "$TANSU_PID_FILE"
    local log_start
    log_start=$(($(stat -c %s "$TANSU_LOG" 2>/dev/null || echo 0) + 1))
    {
        echo
        echo "=== $(date -u +%FT%TZ) deps.sh: starting $bin (storage $storage)"
    } >>"$TANSU_LOG"
    # Explicit flags override any CLUSTER_ID/LISTENER_URL/STORAGE_ENGINE from the
    # environment; tansu also reads OTEL_EXPORTER_OTLP_ENDPOINT / SCHEMA_REGISTRY
    # from the env and a .env file from its cwd (and parents), so run it from
    # the state dir with those unset.
    (
        cd "$STATE_DIR"
        exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u SCHEMA_REGISTRY \
            RUST_LOG="${DEPS_TANSU_RUST_LOG:-warn}" NO_COLOR=1 \
            setsid nohup "$bin" broker \
            --cluster-id kommerce \
            --listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
            --advertised-listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
            --storage-engine "$storage" \
            </dev/null >>"$TANSU_LOG" 2>&1
    ) &
    local pid=$!

    local deadline=$((SECONDS + 30))
    until tansu_listening; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -c "+$log_start" "$TANSU_LOG" | tail -n 20 | sed 's/^/    | /' >&2
            die "tansu: broker exited during startup (log: $TANSU_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            tail -c "+$log_start" "$TANSU_LOG" | tail -n 20 | sed 's/^/    | /' >&2
            die "tansu: not accepting connections on $TANSU_HOST:$TANSU_PORT after 30s (pid $pid, log: $TANSU_LOG)"
        fi
        sleep 0.5
    done
    local lpid
    lpid=$(tansu_listener_pid)
    echo "${lpid:-$pid}" >"$TANSU_PID_FILE"
    say "tansu: ${what}started on $TANSU_HOST:$TANSU_PORT (pid ${lpid:-$pid}, storage $storage, log $TANSU_LOG)"
}

# ------------------------------------------------------------------- main

main() {
    local deps=() d
    for d in "$@"; do
        case $d in
        -h | --help)
            usage
            exit 0
            ;;
        postgres | postgresql | pg) deps+=(postgres) ;;
        redis) deps+=(redis) ;;
        tansu | kafka) deps+=(tansu) ;;
        *)
            usage >&2
            die "unknown dependency '$d' (expected: ${ALL_DEPS[*]})"
            ;;
        esac
    done
    ((${#deps[@]})) || deps=("${ALL_DEPS[@]}")
    for d in "${deps[@]}"; do
        "ensure_$d"
    done
}

main "$@"; exit $? # one line: safe if this file is edited while running
