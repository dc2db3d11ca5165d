#!/usr/bin/env bash
# tests/slurm-cluster.sh start DIR | stop DIR: a one-node Slurm on this
# machine, all of it under DIR: munged on its own socket and key, slurmctld
# and slurmd on spare ports, state, spool and logs in DIR; nothing of the
# system's /etc/slurm or /etc/munge is used or changed. `start` prints the
# SLURM_CONF to export; `stop` ends every daemon it started. Needs root
# (slurmd runs jobs as their users) and Debian's slurm-wlm and munge.
set -euo pipefail
cmd=$1 dir=$2
conf="$dir/slurm.conf"

stop() {
    for p in slurmd slurmctld munged; do
        [ -s "$dir/$p.pid" ] || continue
        pid=$(cat "$dir/$p.pid")
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/$p.pid"
    done
}

port() { # a free TCP port on 127.0.0.1
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    [ "$cpus" -ge 4 ] || cpus=4   # config_overrides: slurmd believes the config
    cat > "$conf" <<CONF
ClusterName=psodtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(port)
SlurmdPort=$(port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=15
# As on many clusters: a task that fails ends its step (psod.sbatch opts out).
KillOnBadExit=1
InactiveLimit=0
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    slurmctld -f "$conf" -i
    slurmd -f "$conf"
    export SLURM_CONF="$conf"
    for _ in $(seq 300); do
        sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle' && { echo "$conf"; return 0; }
        sleep 0.1
    done
    echo "slurm-cluster.sh: the node never became idle:" >&2
    sinfo -N -l >&2 || true
    tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    stop
    return 1
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: slurm-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
