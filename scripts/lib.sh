# Helpers shared by scripts/deps.sh and scripts/kafka.sh (sourced, not run). Each script
# defines its own say/die with its own prefix.

have() { command -v "$1" >/dev/null 2>&1; }

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

# log_tail FILE [LINES]: the end of a log, indented, on stderr.
log_tail() { [[ -f $1 ]] && tail -n "${2:-20}" "$1" | sed 's/^/    | /' >&2 || true; }
