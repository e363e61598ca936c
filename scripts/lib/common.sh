# The preamble every bench and compat script shares. Set LOG_TAG, then source this file:
#   LOG_TAG=zstor-bench; . "$ROOT/scripts/lib/common.sh"
# It gives log/die (tagged lines on stderr; die exits with DIE_STATUS, default 1), need_root, TARGET_DIR (CARGO_TARGET_DIR or
# target/) and build_release (cargo build --release of the given packages, skipped with
# SKIP_BUILD=1).

log() { echo "[$LOG_TAG] $*" >&2; }
die() {
    echo "[$LOG_TAG] error: $*" >&2
    exit "${DIE_STATUS:-1}"
}

# need_root WHY: stop unless running as root; WHY says what needs it.
need_root() {
    [[ $(id -u) == 0 ]] || die "run as root ($1)"
}

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# build_release ARGS...: `cargo build --release -q ARGS` in the repository, unless SKIP_BUILD=1.
build_release() {
    [[ ${SKIP_BUILD:-0} == 1 ]] && return 0
    log "building (release): $*"
    (cd "$ROOT" && cargo build --release -q "$@") || die "cargo build failed"
}
