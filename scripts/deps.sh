#!/usr/bin/env bash
# Ensure the local infrastructure Kommerce needs is up (idempotent).
#
#   scripts/deps.sh                  # postgres, redis, kafka and the browser
#   scripts/deps.sh postgres redis   # only the named ones
#   scripts/deps.sh stop redis       # stop the named ones (the fault suite restarts engines:
#                                    # stop, then start again; Redis comes back empty)
#
# Debian, no systemd, no docker. Missing packages are installed with apt-get
# (root only); the Kafka broker comes from Maven via scripts/kafka.sh.
#
#   postgres  127.0.0.1:5432  postgres://postgres@127.0.0.1:5432/postgres (trust auth)
#   redis     127.0.0.1:6379
#   kafka     127.0.0.1:9092  Apache Kafka, KRaft single node (controller on :10092),
#                             state in $KOMMERCE_STATE_DIR/kafka
#   browser   /usr/bin/chromium, Debian's Chromium (with CJK fonts for the Korean pages) for
#             the storefront's browser tests (test tools never download a browser of their own)
#
# Environment:
#   KOMMERCE_STATE_DIR   state/log dir (default: $HOME/.cache/kommerce)
#   DEPS_SKIP_KAFKA=1    skip the Kafka broker
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
KAFKA_PORT=9092

STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
APT_LOG="$STATE_DIR/apt.log"

ALL_DEPS=(postgres redis kafka browser)

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
die() {
    printf 'deps.sh: ERROR: %s\n' "$*" >&2
    exit 1
}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
is_root() { [[ $(id -u) -eq 0 ]]; }

usage() {
    cat <<EOF
usage: $0 [stop] [postgres] [redis] [kafka]
Ensures the named local dependencies are running (default: all); with stop, stops them.
Env: KOMMERCE_STATE_DIR, DEPS_SKIP_KAFKA=1 (and the KAFKA_* variables of scripts/kafka.sh)
EOF
}

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

# Connections the server accepts. Debian's default is 100; the checkout benchmark's commit
# ceiling opens one per shopper (128) while six services hold their pools, and a parallel
# `make test` opens a pool per test database.
PG_MAX_CONNECTIONS=300

# Raises max_connections (a drop-in in conf.d, which Debian's postgresql.conf includes) and
# restarts the cluster when it is below PG_MAX_CONNECTIONS; prints what it did.
pg_ensure_connections() {
    local ver=$1 have_now
    have_now=$(pg_psql -Atc 'show max_connections' 2>/dev/null || echo 0)
    ((have_now >= PG_MAX_CONNECTIONS)) && return 0
    if ! is_root || [[ -z $ver ]]; then
        say "postgres: max_connections is $have_now (below $PG_MAX_CONNECTIONS; not root, left as is)"
        return 0
    fi
    mkdir -p "/etc/postgresql/$ver/main/conf.d"
    printf '# written by kommerce scripts/deps.sh\nmax_connections = %s\n' "$PG_MAX_CONNECTIONS" \
        >"/etc/postgresql/$ver/main/conf.d/kommerce.conf"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main restart >/dev/null 2>&1 || {
        log_tail "/var/log/postgresql/postgresql-$ver-main.log"
        die "postgres: restart for max_connections failed"
    }
    wait_for 30 pg_ready || die "postgres: not accepting connections after the restart"
    say "postgres: max_connections $have_now -> $(pg_psql -Atc 'show max_connections')"
}

ensure_postgres() {
    if pg_ready; then
        pg_verify || die "postgres: accepting connections on $PG_HOST:$PG_PORT, but 'psql -h $PG_HOST -U postgres -c \"select 1\"' fails (auth? expected trust for user postgres)"
        pg_ensure_connections "$(pg_cluster_version)"
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
    pg_ensure_connections "$ver"

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

# ------------------------------------------------------------------ kafka

# Apache Kafka (KRaft, one node) from scripts/kafka.sh, which fetches the broker with mvn
# on first use and is itself idempotent: a broker already answering on the port is reused.
ensure_kafka() {
    if [[ ${DEPS_SKIP_KAFKA:-0} == 1 ]]; then
        say "kafka: skipped (DEPS_SKIP_KAFKA=1)"
        return 0
    fi
    if ! have java; then
        is_root || die "kafka: java not found and not root; install a JRE 17+"
        say "kafka: java not found, installing openjdk-17-jre-headless with apt-get..."
        apt_install openjdk-17-jre-headless
    fi
    if ! have mvn; then
        is_root || die "kafka: mvn not found and not root; apt-get install -y maven"
        say "kafka: mvn not found, installing maven with apt-get..."
        apt_install maven
    fi
    KOMMERCE_STATE_DIR="$STATE_DIR" bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" start --port "$KAFKA_PORT"
}

# Debian's Chromium, driven by playwright-core with executablePath (web/e2e).
ensure_browser() {
    if [[ -x /usr/bin/chromium && -d /usr/share/fonts/opentype/noto ]]; then
        say "browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) installed"
        return 0
    fi
    is_root || die "browser: chromium or its CJK fonts missing and not root; apt-get install -y chromium fonts-noto-cjk"
    say "browser: installing Debian's chromium and fonts-noto-cjk with apt-get..."
    apt_install chromium fonts-noto-cjk
}

stop_browser() { :; }

# ------------------------------------------------------------------- stop

port_closed() { ! port_open "$1" "$2"; }

# A fast shutdown: open sessions are ended, as a crash or a failover would end them.
stop_postgres() {
    local ver
    ver=$(pg_cluster_version)
    [[ -n $ver ]] || die "postgres: no cluster to stop"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main stop -m fast >/dev/null 2>&1 || true
    wait_for 30 port_closed "$PG_HOST" "$PG_PORT" ||
        die "postgres: still accepting connections 30s after stop"
    say "postgres: stopped"
}

# Without saving: Redis comes back with no keys (it runs without persistence).
stop_redis() {
    redis_ping || { say "redis: not running"; return 0; }
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_for 15 port_closed "$REDIS_HOST" "$REDIS_PORT" ||
        die "redis: still running 15s after shutdown"
    say "redis: stopped"
}

stop_kafka() {
    KOMMERCE_STATE_DIR="$STATE_DIR" bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" stop --port "$KAFKA_PORT"
}

# ------------------------------------------------------------------- main

main() {
    local deps=() d verb=ensure
    for d in "$@"; do
        case $d in
        stop) verb=stop ;;
        -h | --help)
            usage
            exit 0
            ;;
        postgres | postgresql | pg) deps+=(postgres) ;;
        redis) deps+=(redis) ;;
        kafka | broker) deps+=(kafka) ;;
        browser | chromium) deps+=(browser) ;;
        *)
            usage >&2
            die "unknown dependency '$d' (expected: ${ALL_DEPS[*]})"
            ;;
        esac
    done
    ((${#deps[@]})) || deps=("${ALL_DEPS[@]}")
    for d in "${deps[@]}"; do
        "${verb}_$d"
    done
}

main "$@"; exit $? # one line: safe if this file is edited while running
