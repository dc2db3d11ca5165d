#!/usr/bin/env bash
# Install the Debian packages psod needs to build, test and run.
#
#   scripts/install-deps.sh              install (idempotent: apt skips what is there)
#   scripts/install-deps.sh --if-missing only call apt when something is missing
#   scripts/install-deps.sh --check      report what is missing, exit 1 if anything is
#   scripts/install-deps.sh --plots ...  also gnuplot (scripts/sweep.sh draws with it)
#   scripts/install-deps.sh --fuzz ...   also clang, its libFuzzer runtime (make fuzz), clang-format
#   scripts/install-deps.sh --ops ...    also what the operations tests use: Slurm and
#                                        munge, sshd, promtool, Chromium, man, systemd-analyze
#
# Uses sudo when not run as root.
set -euo pipefail

# python3-torch, -numpy and -pytest: the Python binding, psoworker-torch and
# their tests (Debian's /usr/bin/python3; no pip).
PACKAGES=(build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
          libopenblas-dev check zlib1g-dev python3 valgrind python3-torch python3-numpy
          python3-pytest iproute2 libmicrohttpd-dev libcjson-dev)
# npm (uPlot for psod's status page): Debian's only where none is installed.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing() {
    local m=()
    command -v cc >/dev/null 2>&1 || m+=(build-essential)
    command -v make >/dev/null 2>&1 || m+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || m+=(pkg-config)
    command -v protoc-c >/dev/null 2>&1 || m+=(protobuf-c-compiler)
    command -v python3 >/dev/null 2>&1 || m+=(python3)
    command -v valgrind >/dev/null 2>&1 || m+=(valgrind)
    command -v tc >/dev/null 2>&1 || m+=(iproute2)  # scripts/netlab.sh
    command -v npm >/dev/null 2>&1 || m+=(npm)  # uPlot for psod's status page
    /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || m+=(python3-torch)
    /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || m+=(python3-numpy)
    /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || m+=(python3-pytest)
    [ "$plots" = 0 ] || command -v gnuplot >/dev/null 2>&1 || m+=(gnuplot-nox)
    if [ "$ops" = 1 ]; then
        command -v sbatch >/dev/null 2>&1 || m+=(slurm-wlm)
        command -v munged >/dev/null 2>&1 || m+=(munge)
        [ -x /usr/sbin/sshd ] || m+=(openssh-server)
        command -v ssh >/dev/null 2>&1 || m+=(openssh-client)
        command -v promtool >/dev/null 2>&1 || m+=(prometheus)
        command -v chromium >/dev/null 2>&1 || m+=(chromium)
        command -v man >/dev/null 2>&1 || m+=(man-db)
        command -v systemd-analyze >/dev/null 2>&1 || m+=(systemd)
        command -v dpkg-deb >/dev/null 2>&1 || m+=(dpkg)
    fi
    if [ "$fuzz" = 1 ]; then
        command -v clang >/dev/null 2>&1 || m+=(clang)
        command -v clang-format >/dev/null 2>&1 || m+=(clang-format)
        # The libFuzzer runtime ships in libclang-rt-dev (libclang_rt.fuzzer).
        ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
            ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 ||
            m+=(libclang-rt-dev)
    fi
    if command -v pkg-config >/dev/null 2>&1; then
        pkg-config --exists libzmq || m+=(libzmq3-dev)
        pkg-config --exists libprotobuf-c || m+=(libprotobuf-c-dev)
        pkg-config --exists check || m+=(check)
        pkg-config --exists openblas || m+=(libopenblas-dev)
        pkg-config --exists zlib || m+=(zlib1g-dev)
        pkg-config --exists libmicrohttpd || m+=(libmicrohttpd-dev)
        pkg-config --exists libcjson || m+=(libcjson-dev)
    else
        m+=(libzmq3-dev libprotobuf-c-dev check libopenblas-dev zlib1g-dev libmicrohttpd-dev libcjson-dev)
    fi
    printf '%s\n' "${m[@]}" | sort -u | grep -v '^$' || true
}

mode=install plots=0 fuzz=0 ops=0
for arg in "$@"; do
    case "$arg" in
        --if-missing) mode=if-missing ;;
        --check) mode=check ;;
        --plots) plots=1; PACKAGES+=(gnuplot-nox) ;;
        --fuzz) fuzz=1; PACKAGES+=(clang libclang-rt-dev clang-format) ;;
        --ops) ops=1; PACKAGES+=(slurm-wlm munge openssh-server openssh-client prometheus
                                 chromium man-db systemd dpkg) ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

todo=$(missing)
if [ "$mode" = check ]; then
    if [ -n "$todo" ]; then echo "missing: $(echo $todo)"; exit 1; fi
    echo "all dependencies present"; exit 0
fi
if [ "$mode" = if-missing ] && [ -z "$todo" ]; then exit 0; fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: apt-get not found; install these packages by hand: ${PACKAGES[*]}" >&2
    exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps.sh: not root and no sudo; run as root" >&2; exit 1; }
    SUDO=sudo
fi
echo "install-deps.sh: installing ${PACKAGES[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
todo=$(missing)
if [ -n "$todo" ]; then
    echo "install-deps.sh: still missing after install: $(echo $todo)" >&2
    exit 1
fi
echo "install-deps.sh: dependencies installed" >&2
