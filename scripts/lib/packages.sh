# Sourced by the test and benchmark scripts: `install_packages PKG...` installs Debian
# packages that a script needs and the machine lacks (as root; otherwise it names them and
# fails). Callers pass only what is missing; no argument means nothing to do.
install_packages() {
    (($#)) || return 0
    if [[ $(id -u) != 0 ]]; then
        echo "missing packages: $* (install them, or run as root)" >&2
        return 1
    fi
    echo "installing $*" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
