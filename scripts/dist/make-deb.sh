#!/usr/bin/env bash
# scripts/dist/make-deb.sh BUILD VERSION: BUILD/psod_VERSION_ARCH.deb, the
# whole of `make install PREFIX=/usr` (daemon, workers, psoctl, libpsoclient
# and its header and .pc, the Python package, man pages, psod.service, its
# sysusers.d entry and /etc/psod/psod.conf as a conffile), by dpkg-deb. The
# maintainer scripts create the user psod and run ldconfig; the service is
# not enabled (systemctl enable --now psod).
set -euo pipefail
build=$1 version=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
arch=$(dpkg --print-architecture)
stage="$build/deb/psod_${version}_$arch"
rm -rf "$stage"
make -s -C "$root" BUILD="$build" PREFIX=/usr DESTDIR="$root/$stage" install > /dev/null
find "$root/$stage" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p "$stage/DEBIAN"
# The Debian packages of the shared libraries the binaries name (NEEDED).
needed=$(for b in psod psoworker psoctl; do readelf -d "$build/$b"; done |
         sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u | grep -v '^libpsoclient')
deps=$(for l in $needed; do
           path=$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')
           [ -n "$path" ] && { dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path"; }
       done | cut -d: -f1 | sed 's/^libopenblas0-.*/libopenblas0/' | sort -u | grep -v '^libc6$' |
       paste -sd, | sed 's/,/, /g')
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CTL
Package: psod
Version: $version
Architecture: $arch
Maintainer: psod developers <psod@localhost>
Installed-Size: $size
Depends: libc6, ${deps}, python3
Recommends: python3-torch, python3-numpy
Section: science
Priority: optional
Description: parameter synchronization with particle swarms (PSO-PS)
 psod holds the swarm of a distributed training job: each worker is a
 particle whose position is its model's weights and whose fitness is its
 training loss. Includes the daemon and its systemd unit, the C worker
 psoworker, the PyTorch worker psoworker-torch, psoctl and libpsoclient.
CTL
echo /etc/psod/psod.conf > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers /usr/lib/sysusers.d/psod.conf
    elif ! getent passwd psod >/dev/null; then
        adduser --system --group --home /var/lib/psod --no-create-home psod
    fi
    ldconfig
fi
SH
cat > "$stage/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
[ "$1" != remove ] || ldconfig
SH
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$stage" "$build/psod_${version}_$arch.deb" > /dev/null
echo "$build/psod_${version}_$arch.deb"
