#!/usr/bin/env bash
# kubevirt-py build entry point. Idempotent: every step checks before it acts.
#
#   ./build.sh            set up only (apt packages, .venv, generated gRPC code)
#   ./build.sh test [ARGS] set up, then run the test suite (ARGS go to pytest)
#   ./build.sh demo       set up, then run the main job
#   ./build.sh proto      regenerate the gRPC code only
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"

# What the product and its tests run: libvirt and QEMU for guests, etcd for the
# local control plane, compilers and headers for libvirt-python, busybox for the
# tiny test guest and the tools that make its boot disk (syslinux, mtools,
# dosfstools; e2fsprogs and cpio for its tests), Prometheus and promtool for the
# monitoring rules and the test that scrapes a local cluster.
APT_PACKAGES=(
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    qemu-system-x86 qemu-utils
    libvirt-dev pkg-config gcc python3-dev python3-venv
    etcd-server etcd-client
    busybox-static iproute2 util-linux procps ca-certificates
    syslinux syslinux-common mtools dosfstools e2fsprogs cpio
    prometheus
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Run a noisy step; show its output only if it fails.
quietly() {
    local out
    out=$(mktemp)
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        echo "build.sh: failed: $*" >&2
        exit 1
    fi
    rm -f "$out"
}

ensure_apt_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "build.sh: missing Debian packages (${missing[*]}); run as root to install them" >&2
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    # A fresh machine has no package lists yet; update before the first install.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    without_service_starts DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    disable_package_services
}

# Debian's packages start their daemons on install: prometheus would hold :9090 and
# scrape nothing of ours (the tests run their own on a free port). Nothing here wants a
# system daemon: the launchers run their own libvirt, the local cluster its own etcd.
# A policy-rc.d that answers 101 ("not allowed") stops invoke-rc.d and
# deb-systemd-invoke; one already in place (a container image's) is left as it is.
without_service_starts() {
    local policy=/usr/sbin/policy-rc.d status=0
    if [ -e "$policy" ]; then
        env "$@" || status=$?
        return $status
    fi
    printf '#!/bin/sh\n# build.sh: no service starts while it installs packages\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    env "$@" || status=$?
    rm -f "$policy"
    return $status
}

# Under systemd the packages also enable their units for the next boot.
disable_package_services() {
    [ -d /run/systemd/system ] || return 0
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
}

ensure_libvirt_accounts() {
    # libvirt resolves its compiled-in QEMU user before reading qemu.conf, so the
    # account must exist even though our launchers run QEMU as root.
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    getent group kvm >/dev/null || groupadd --system kvm
    getent passwd libvirt-qemu >/dev/null \
        || useradd --system -g libvirt-qemu -G kvm -d /var/lib/libvirt -M -s /usr/sbin/nologin libvirt-qemu
}

# Debian's own interpreter first: it is built with PGO and LTO, which a source build
# (pyenv's default) is not, and every component here is Python: the same code runs
# some 15-20% faster on it and starts sooner (bench/run's start and density figures).
pick_python() {
    local py
    for py in /usr/bin/python3.11 python3.11 python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$py"; return 0
        fi
    done
    echo "build.sh: Python >= 3.11 is required" >&2
    exit 1
}

generate_grpc() {
    # Generated code lives in its own package (kubevirt_grpc/, never committed). The
    # virtual include path makes the generated imports absolute within that package.
    # It is generated aside and swapped in, so running processes (a local cluster
    # during a rebuild) never import a half-written package.
    log "generating gRPC code from proto/"
    local protos staging
    staging=$(mktemp -d "$ROOT/.kubevirt_grpc.XXXXXX")
    mkdir -p "$staging/kubevirt_grpc"
    protos=$(cd proto && find . -name '*.proto' | sed 's|^\./|kubevirt_grpc/|' | sort)
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m grpc_tools.protoc -Ikubevirt_grpc=proto \
        --python_out="$staging" --pyi_out="$staging" --grpc_python_out="$staging" $protos
    find "$staging/kubevirt_grpc" -type d -exec sh -c 'touch "$1/__init__.py"' _ {} \;
    echo '"""Generated from proto/ by build.sh. Do not edit."""' > "$staging/kubevirt_grpc/__init__.py"
    if [ -d "$ROOT/kubevirt_grpc" ] && diff -rq -x __pycache__ "$staging/kubevirt_grpc" "$ROOT/kubevirt_grpc" >/dev/null 2>&1; then
        rm -rf "$staging"   # unchanged: keep the files running processes already use
        return
    fi
    rm -rf "$ROOT/kubevirt_grpc.old"
    [ -d "$ROOT/kubevirt_grpc" ] && mv "$ROOT/kubevirt_grpc" "$ROOT/kubevirt_grpc.old"
    mv "$staging/kubevirt_grpc" "$ROOT/kubevirt_grpc"
    rm -rf "$staging" "$ROOT/kubevirt_grpc.old"
}

# The installation an interpreter (or a venv's) belongs to.
venv_base() {
    "$1" -c 'import sys; print(sys.base_prefix, sys.version)'
}

ensure_venv() {
    local py stamp want
    py=$(pick_python)
    if [ -x "$VENV/bin/python" ] && [ "$(venv_base "$VENV/bin/python")" != "$(venv_base "$py")" ]; then
        log "recreating .venv on $py"
        rm -rf "$VENV"
    fi
    [ -x "$VENV/bin/python" ] || { log "creating .venv"; "$py" -m venv "$VENV"; }
    stamp="$VENV/.kubevirt-py-installed"
    # A changed pyproject.toml (or a new top-level package) needs a reinstall.
    want=$( { cat pyproject.toml; ls -d -- */__init__.py | grep -v '^kubevirt_grpc/'; } | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "installing the project and its pinned dependencies into .venv"
        # The generated package must exist when the editable install maps the
        # checkout's top-level packages, so generate before installing.
        quietly "$VENV/bin/pip" install --upgrade pip
        quietly "$VENV/bin/pip" install "$(grep -o '"grpcio-tools==[^"]*"' pyproject.toml | tr -d '"')"
        generate_grpc
        # compat: the checkout's root on sys.path through a plain .pth line. The default
        # mode's import finder costs every Python process ~7 ms at start (pathlib, urllib,
        # ipaddress) - every launcher, trampoline and CLI call. pyproject.toml pins the
        # setuptools that still offers this mode.
        quietly "$VENV/bin/pip" install -e ".[test]" --config-settings editable_mode=compat
        echo "$want" > "$stamp"
    fi
}

setup() {
    ensure_apt_packages
    ensure_libvirt_accounts
    ensure_venv
    # Always regenerate: cheap, and a changed proto/ never meets stale code.
    generate_grpc
    # The tiny test guest and its OCI images (build/guest, build/oci); a no-op when
    # they are up to date. The first run downloads the Debian kernel .deb.
    "$VENV/bin/python" -m guest_image build
    compile_bytecode
}

# Every component, launcher and CLI call is a new Python process: without bytecode
# each would compile its modules again (~35 ms for a launcher), as it does where
# PYTHONDONTWRITEBYTECODE is set. Stale files are simply recompiled on import.
compile_bytecode() {
    local packages
    packages=$(ls -d -- */__init__.py | xargs -n1 dirname)
    # shellcheck disable=SC2086 # one word per package
    quietly "$VENV/bin/python" -m compileall -q -j 0 $packages
}

main() {
    local cmd=${1:-setup}
    [ $# -gt 0 ] && shift
    case "$cmd" in
        setup) setup ;;
        proto) generate_grpc ;;
        test)
            setup
            log "running the test suite"
            exec "$VENV/bin/python" -m pytest "$@"
            ;;
        demo)
            setup
            exec "$VENV/bin/python" -m local_cluster.demo "$@"
            ;;
        -h|--help|help) sed -n '2,8p' "$0" ;;
        *) echo "build.sh: unknown command '$cmd' (expected: test, demo, proto, or nothing)" >&2; exit 2 ;;
    esac
}

main "$@"
