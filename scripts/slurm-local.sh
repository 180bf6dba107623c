#!/usr/bin/env bash
# Single-node, localhost-only SLURM "cluster" from Debian packages (slurm-wlm + munge), for trying
# `softtargets sweep --backend slurm` without a cluster and for the system test (tests/test_sweep_slurm.py).
# Everything (config, key, sockets, state, logs) lives under $SLURM_LOCAL_DIR; nothing in /etc is changed.
# Needs root (apt-get install, daemons running as root).
# Usage:  scripts/slurm-local.sh install | start | stop | status | env
#   eval "$(scripts/slurm-local.sh env)"   -> exports SLURM_CONF so sbatch/squeue/sinfo use this cluster
# Ports: SLURM_LOCAL_CTLD_PORT / SLURM_LOCAL_SLURMD_PORT (default 6817/6818).
# SLURM_LOCAL_CRED_EXPIRE: AuthInfo cred_expire, the seconds a requeued job waits before it may start again
# (SLURM's default 120; the requeue system tests use 10).
set -euo pipefail

D="${SLURM_LOCAL_DIR:-${TMPDIR:-/tmp}/slurm-local}"
NODE="$(hostname -s)"
CPUS="${SLURM_LOCAL_CPUS:-$(nproc)}"
MEM_MB="${SLURM_LOCAL_MEM_MB:-4096}"
CTLD_PORT="${SLURM_LOCAL_CTLD_PORT:-6817}"
SLURMD_PORT="${SLURM_LOCAL_SLURMD_PORT:-6818}"
MSOCK="$D/munge/munge.socket"
CRED_EXPIRE="${SLURM_LOCAL_CRED_EXPIRE:-120}"

install_pkgs() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
  mkdir -p "$D"/{munge,state,log,run} "$D/spool/slurmd-$NODE"
  chmod 0700 "$D/munge"
  [ -s "$D/munge/munge.key" ] || mungekey --create --keyfile="$D/munge/munge.key" --bits=1024
  chmod 0400 "$D/munge/munge.key"
  cat >"$D/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${MSOCK},cred_expire=${CRED_EXPIRE}
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/slurmd-%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
SchedulerParameters=sched_interval=1
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install_pkgs
  write_conf
  export SLURM_CONF="$D/slurm.conf"
  munged --key-file="$D/munge/munge.key" --socket="$MSOCK" \
         --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
         --seed-file="$D/munge/munged.seed" --force
  munge -S "$MSOCK" -n | unmunge -S "$MSOCK" >/dev/null   # sanity check of the key/socket
  slurmctld -c -f "$SLURM_CONF"       # daemonizes; -c: clean state, no jobs from an earlier start
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do             # wait until the node is schedulable
    st="$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)"
    case "$st" in idle|mix|alloc) echo "slurm up: node $NODE state=$st"; return 0;; esac
    sleep 0.5
  done
  echo "slurm did not come up; see $D/log" >&2; sinfo -N -l >&2 || true; return 1
}

stop() {
  export SLURM_CONF="$D/slurm.conf"
  for f in "$D"/run/slurmd-*.pid "$D/run/slurmctld.pid" "$D/munge/munged.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$f"
  done
  echo "slurm stopped"
}

case "${1:-}" in
  install) install_pkgs ;;
  start)   start ;;
  stop)    stop ;;
  status)  SLURM_CONF="$D/slurm.conf" sinfo -N -l; SLURM_CONF="$D/slurm.conf" squeue ;;
  env)     echo "export SLURM_CONF=$D/slurm.conf" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
