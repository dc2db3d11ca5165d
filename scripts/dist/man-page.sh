#!/usr/bin/env bash
# scripts/dist/man-page.sh TEMPLATE VERSION BUILD: a man page from its
# template (docs/man/NAME.SECTION.in), the line @OPTIONS@ replaced by the
# program's own option table, in roff: `PROGRAM --help-man`, or for
# psoworker-torch its argparse parser (python/psod/manpage.py).
set -euo pipefail
tmpl=$1 version=$2 build=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
name=$(basename "$tmpl" .in)
prog=${name%.*}
opts=$(mktemp)
trap 'rm -f "$opts"' EXIT
case "$prog" in
    psoworker-torch) PYTHONPATH="$root/python" /usr/bin/python3 -m psod.manpage > "$opts" ;;
    *) "$build/$prog" --help-man > "$opts" ;;
esac
[ -s "$opts" ] || { echo "man-page.sh: $prog printed no options" >&2; exit 1; }
grep -qx '@OPTIONS@' "$tmpl" || { echo "man-page.sh: $tmpl has no @OPTIONS@ line" >&2; exit 1; }
sed -e "s|@VERSION@|$version|g" -e '/^@OPTIONS@$/,$d' "$tmpl"
cat "$opts"
sed -e "s|@VERSION@|$version|g" -e '1,/^@OPTIONS@$/d' "$tmpl"
