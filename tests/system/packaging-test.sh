#!/usr/bin/env bash
# Packaging: the man pages render (man -l, no warnings) and name every option
# each program's --help lists; make install DESTDIR= puts every file where it
# belongs, a program builds against the installed header and .pc and runs on
# the installed shared library, the Python package imports from where it was
# installed; make uninstall removes all of it but the config; psod runs with
# the shipped /etc/psod/psod.conf; the systemd unit passes systemd-analyze
# verify (with its exposure score); make deb builds a package holding all of
# it. Prints "packaging: N passed, M failed".
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "packaging: FAIL: $*"; }

make -s BUILD="$BUILD" man > "$dir/man.log" 2>&1 || bad "make man: $(tail -3 "$dir/man.log")"
if command -v man >/dev/null; then
    for page in psod.8 psoworker.1 psoctl.1 psoworker-torch.1; do
        prog=${page%.*}
        MANWIDTH=200 man --warnings -l "$BUILD/man/$page" > "$dir/$page.txt" 2> "$dir/$page.err"
        if [ -s "$dir/$page.err" ] || [ ! -s "$dir/$page.txt" ]; then
            bad "man -l $page: $(head -3 "$dir/$page.err")"; continue
        fi
        case "$prog" in
            psoworker-torch) /usr/bin/python3 python/psoworker-torch --help > "$dir/$prog.help" ;;
            *) "$BUILD/$prog" --help > "$dir/$prog.help" ;;
        esac
        missing=$(grep -o -- '--[a-z][a-z0-9-]*' "$dir/$prog.help" | sort -u | grep -v -- '^--help$' |
                  while read -r o; do grep -qF -- "$o" "$dir/$page.txt" || echo "$o"; done)
        [ -z "$missing" ] && ok || bad "$page lacks options of $prog --help: $missing"
    done
else
    echo "packaging: man not installed (scripts/install-deps.sh --ops); the man -l checks skipped"
fi

d="$dir/destdir"
make -s BUILD="$BUILD" PREFIX=/usr DESTDIR="$d" install > "$dir/install.log" 2>&1 ||
    bad "make install: $(tail -3 "$dir/install.log")"
for f in usr/bin/psod usr/bin/psoworker usr/bin/psoctl usr/bin/psoworker-torch \
         usr/lib/libpsoclient.a usr/lib/libpsoclient.so.1 usr/lib/libpsoclient.so \
         usr/lib/pkgconfig/psoclient.pc usr/include/psod/psoclient.h \
         usr/lib/python3/dist-packages/psod/__init__.py usr/share/man/man8/psod.8 \
         usr/share/man/man1/psoworker.1 usr/share/man/man1/psoctl.1 \
         usr/share/man/man1/psoworker-torch.1 usr/lib/systemd/system/psod.service \
         usr/lib/sysusers.d/psod.conf etc/psod/psod.conf; do
    [ -e "$d/$f" ] || bad "make install did not install /$f"
done
ok
grep -q '^ExecStart=/usr/bin/psod --config /etc/psod/psod.conf$' "$d/usr/lib/systemd/system/psod.service" &&
    ok || bad "the unit's ExecStart: $(grep ExecStart "$d/usr/lib/systemd/system/psod.service")"

cat > "$dir/client.c" <<'C'
#include <psoclient.h>
#include <stdio.h>
int main(void)
{
    struct psoc_options o;
    psoc_options_default(&o);
    printf("%s %d\n", psoc_wire_name(psoc_wire_parse("bf16")), o.connect_timeout_ms > 0);
    return 0;
}
C
if cc -o "$dir/client" "$dir/client.c" \
        $(PKG_CONFIG_SYSROOT_DIR="$d" PKG_CONFIG_PATH="$d/usr/lib/pkgconfig" pkg-config --cflags --libs psoclient) \
        2> "$dir/cc.err" &&
   [ "$(LD_LIBRARY_PATH="$d/usr/lib" "$dir/client")" = "bf16 1" ] &&
   LD_LIBRARY_PATH="$d/usr/lib" ldd "$dir/client" | grep -q "$d/usr/lib/libpsoclient.so.1"; then ok
else bad "a client built on the installed .pc and library: $(head -3 "$dir/cc.err")"; fi
if PYTHONPATH="$d/usr/lib/python3/dist-packages" PSOD_LIBRARY="$d/usr/lib/libpsoclient.so.1" \
   /usr/bin/python3 -c 'import psod, sys; sys.exit(0 if psod.__file__.startswith(sys.argv[1]) else 1)' "$d" \
   2> "$dir/py.err"; then ok; else bad "the installed Python package: $(tail -2 "$dir/py.err")"; fi

# The shipped config, its paths moved into the test's directory (which
# stands for the StateDirectory systemd makes).
mkdir -p "$dir/state"
sed -e "s|/var/lib/psod|$dir/state|g" -e "s|^bind .*|bind tcp://127.0.0.1:*|" \
    -e "s|^http .*|http 127.0.0.1:0|" "$d/etc/psod/psod.conf" > "$dir/psod.conf"
"$d/usr/bin/psod" --config "$dir/psod.conf" --endpoint-file "$dir/ep" 2> "$dir/conf.err" &
p=$!
for _ in $(seq 100); do grep -q "status page at" "$dir/conf.err" && [ -s "$dir/ep" ] && break; sleep 0.1; done
kill -TERM "$p"
if wait "$p" && grep -q "status page at" "$dir/conf.err"; then ok
else bad "psod on the shipped psod.conf: $(grep -E 'ERROR|error' "$dir/conf.err" | head -2)"; fi

make -s BUILD="$BUILD" PREFIX=/usr DESTDIR="$d" uninstall > "$dir/uninstall.log" 2>&1 ||
    bad "make uninstall: $(tail -3 "$dir/uninstall.log")"
left=$(cd "$d" && find . \( -type f -o -type l \) | sort)
[ "$left" = "./etc/psod/psod.conf" ] && ok || bad "make uninstall left: $left"

# As a user installs: make install PREFIX=P (no DESTDIR), then P's programs
# and P's Python package with no PYTHONPATH, PSOD_LIBRARY or MANPATH set
# (only P/bin on PATH, and P's site directory for `import psod`, as the
# README says).
p_inst="$dir/inst"
make -s BUILD="$BUILD" PREFIX="$p_inst" install > "$dir/inst.log" 2>&1 ||
    bad "make install PREFIX=$p_inst: $(tail -3 "$dir/inst.log")"
site=$(ls -d "$p_inst"/lib/python3*/dist-packages 2>/dev/null | head -1)
clean_env=(env -u PYTHONPATH -u PSOD_LIBRARY -u MANPATH -u LD_LIBRARY_PATH PATH="$p_inst/bin:/usr/bin:/bin")
if "${clean_env[@]}" psoworker-torch --help > "$dir/pt.out" 2> "$dir/pt.err" &&
   grep -q "usage: psoworker-torch" "$dir/pt.out"; then ok
else bad "the installed psoworker-torch: $(tail -2 "$dir/pt.err")"; fi
if "${clean_env[@]}" PYTHONPATH="$site" /usr/bin/python3 -c \
       'import psod, sys; psod.layout_hash("x"); sys.exit(0 if psod.library_path().startswith(sys.argv[1]) else 1)' \
       "$p_inst" 2> "$dir/pi.err"; then ok
else bad "import psod from $site finds $p_inst/lib/libpsoclient.so.1: $(tail -2 "$dir/pi.err")"; fi
if command -v man >/dev/null; then
    found=$("${clean_env[@]}" man -w psod 2>&1)
    [ "$found" = "$p_inst/share/man/man8/psod.8" ] && ok || bad "man -w psod with P/bin on PATH: $found"
fi

if command -v systemd-analyze >/dev/null; then
    # verify needs ExecStart's binary and the Documentation= pages on this
    # system: install under a prefix of the test's own (no DESTDIR).
    p2="$dir/prefix"
    make -s BUILD="$BUILD" PREFIX="$p2" install > "$dir/install2.log" 2>&1 ||
        bad "make install PREFIX=: $(tail -3 "$dir/install2.log")"
    MANPATH="$p2/share/man" systemd-analyze verify "$p2/lib/systemd/system/psod.service" \
        > "$dir/verify.out" 2>&1
    [ $? -eq 0 ] && [ ! -s "$dir/verify.out" ] && ok || bad "systemd-analyze verify: $(head -5 "$dir/verify.out")"
    systemd-analyze security --offline=true "$p2/lib/systemd/system/psod.service" 2>/dev/null |
        grep -o 'Overall exposure level.*' | sed 's/^/packaging: psod.service: /'
else
    echo "packaging: systemd-analyze not installed (scripts/install-deps.sh --ops); its check skipped"
fi

if command -v dpkg-deb >/dev/null; then
    deb=$(make -s BUILD="$BUILD" deb 2> "$dir/deb.err" | tail -1)
    if [ -f "$deb" ]; then
        dpkg-deb -c "$deb" | awk '{print $6}' > "$dir/deb.list"
        for f in usr/bin/psod usr/bin/psoworker-torch usr/lib/libpsoclient.so.1 \
                 usr/share/man/man8/psod.8 usr/lib/systemd/system/psod.service etc/psod/psod.conf; do
            grep -qx "./$f" "$dir/deb.list" || bad "the package lacks /$f"
        done
        [ "$(dpkg-deb -I "$deb" conffiles)" = /etc/psod/psod.conf ] && dpkg-deb -f "$deb" Depends |
            grep -q libzmq5 && ok || bad "the package's conffiles or Depends: $(dpkg-deb -f "$deb" Depends)"
    else
        bad "make deb: $(tail -3 "$dir/deb.err")"
    fi
fi
echo "packaging: $pass passed, $fail failed ($SECONDS s)"
[ "$fail" -eq 0 ]
