#!/usr/bin/env bash
# scripts/launch-ssh.sh against a real sshd: OpenSSH's sshd on 127.0.0.1 on a
# free port with a host key and a client key made here, reached through an
# ssh_config alias (--ssh-opt "-F FILE"); the hosts file names that host
# twice (2 workers, then 1). launch-ssh.sh starts psod (--psod) bound to a
# non-loopback address of this machine, the 3 workers over ssh, and the
# training must finish with every worker's summary and a model file.
# Needs root and openssh-server (scripts/install-deps.sh --ops); skips
# without them. Prints "ssh: N passed, M failed".
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ] || [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    echo "ssh: needs root and openssh-server (scripts/install-deps.sh --ops); skipped"
    exit 0
fi
dir=$(mktemp -d /tmp/psod-ssh-XXXXXX)
chmod 700 "$dir"
sshd_pid="" dummy=""
cleanup() {
    [ -z "$sshd_pid" ] || kill "$sshd_pid" 2>/dev/null
    [ -z "$dummy" ] || ip link del "$dummy" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "ssh: FAIL: $*"; }

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/id_test"
cp "$dir/id_test.pub" "$dir/authorized_keys"
mkdir -p /run/sshd   # sshd's privilege separation directory
cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv none
CONF
/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2> "$dir/sshd.log" &
sshd_pid=$!
cat > "$dir/ssh_config" <<CONF
Host psodhost
    HostName 127.0.0.1
    Port $port
    User root
    IdentityFile $dir/id_test
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    StrictHostKeyChecking accept-new
CONF
for _ in $(seq 50); do
    ssh -F "$dir/ssh_config" -o BatchMode=yes psodhost true 2>/dev/null && break
    sleep 0.1
done
ssh -F "$dir/ssh_config" -o BatchMode=yes psodhost true 2> "$dir/ssh.err" && ok ||
    { bad "cannot ssh to the test sshd: $(tail -2 "$dir/ssh.err") $(tail -3 "$dir/sshd.log")"; echo "ssh: $pass passed, $fail failed"; exit 1; }

# psod must be reachable at an address that is not loopback (launch-ssh.sh
# refuses loopback, as remote workers could not reach it): this machine's,
# or a dummy interface's made for the test.
addr=$(ip -o -4 addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
if [ -z "$addr" ]; then
    dummy=psodssh$$
    ip link add "$dummy" type dummy && ip addr add 10.254.254.1/32 dev "$dummy" && ip link set "$dummy" up &&
        addr=10.254.254.1
fi
[ -n "$addr" ] || { bad "no non-loopback address for psod"; echo "ssh: $pass passed, $fail failed"; exit 1; }
cport=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("'"$addr"'", 0)); print(s.getsockname()[1])')

"$root/$BUILD/tests/make_fixture" "$dir/data" 1200 300 > /dev/null
printf '# the test sshd, twice\npsodhost 2\npsodhost\n' > "$dir/hosts"
cd "$root"
BUILD=$BUILD timeout 300 scripts/launch-ssh.sh --hosts "$dir/hosts" --connect "tcp://$addr:$cport" --psod \
    --psod-opt "--model-out $dir/model.psom" --ssh-opt "-F $dir/ssh_config" --logs "$dir/logs" \
    -- --model mlp --data-dir "$dir/data" --epochs 2 --sync-every 4 --lr 0.05 > "$dir/launch.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok || bad "launch-ssh.sh exit $rc: $(tail -5 "$dir/launch.out")"
n=$(grep -c '^psoworker psodhost-[0-2]: .*test accuracy' "$dir/launch.out")
[ "$n" = 3 ] && ok || bad "$n of 3 worker summaries: $(tail -5 "$dir/launch.out")"
acc=$(sed -n 's/^psoworker psodhost-0: .*test accuracy \([0-9.]*\).*/\1/p' "$dir/launch.out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.8) }' && ok || bad "accuracy '$acc' (want > 0.8)"
[ -s "$dir/model.psom" ] && ok || bad "psod wrote no model file"
grep -q "joined as particle 2" "$dir/logs/psod.log" && ok || bad "psod never had 3 particles: $(grep -E 'ERR|refused' "$dir/logs/psod.log" | head -3)"
grep -h "test accuracy" "$dir/launch.out" | head -3 | sed 's/^/ssh: /'
echo "ssh: $pass passed, $fail failed ($SECONDS s)"
[ "$fail" -eq 0 ]
