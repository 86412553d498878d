#!/usr/bin/env bash
# A real, throw-away Slurm cluster on this machine (one node, localhost) for testing the
# jobs/ scripts: Debian's slurm-wlm 22.05 and munge, run as root, no cgroups, no systemd.
#
#   tools/slurm_local.sh start DIR   # config, state, logs and sockets under DIR; up in about 1 s
#   export SLURM_CONF=DIR/slurm.conf # then sbatch, srun, squeue, scontrol talk to it
#   tools/slurm_local.sh stop DIR    # stops the daemons (and any job left running)
#
# Private socket and free ports, so it runs beside another such cluster or a system munged.
# AuthInfo=cred_expire=10: a requeued job may start again after 11 s, not 121 s, and
# sched_interval=1 starts it then (the scheduler otherwise looks every 60 s).
# MpiDefault=pmix: `srun` starts Debian's Open MPI ranks (pmi2 and none do not work).
set -euo pipefail

usage() { sed -n '2,12p' "$0" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

# alive PID: true while PID runs. Daemons are reparented to a PID 1 that does not reap
# here, so a dead one lingers as a zombie: look at its state, not only at `kill -0`.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

pid_of() { [ -s "$dir/$1.pid" ] && cat "$dir/$1.pid" || true; }

# two_free_ports: two distinct ports free now (both held at once while chosen). Another
# process may still take one before the daemons bind it: start() then tries again.
two_free_ports() {
  /usr/bin/python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))'
}

start() {
  for d in slurmctld slurmd munged; do
    command -v "$d" >/dev/null || { echo "slurm_local: $d not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
  done
  start_once && return 0
  echo "slurm_local: trying again with other ports" >&2
  start_once && return 0
  exit 1
}

# start_once: writes the configuration and starts the daemons; on a failure, says so with
# the logs, stops what started and returns 1. (Called as `start_once && ...`, where set -e
# does not apply: every step checks itself.)
start_once() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge" && chmod 700 "$dir/munge" || return 1
  local mem cpus ctld_port slurmd_port
  cpus=$(nproc) && mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo) || return 1
  read -r ctld_port slurmd_port < <(two_free_ports)
  [ -n "$ctld_port" ] && [ -n "$slurmd_port" ] || { echo "slurm_local: no free ports" >&2; return 1; }
  cat > "$dir/slurm.conf" <<EOF || return 1
ClusterName=rbmlocal
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
JobRequeue=1
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  # PMIx's per-step directories under DIR rather than /tmp: Slurm fails to remove a
  # cancelled step's, and a later cluster (job ids start at 1 again) could not launch that
  # job id's step ("Cannot create client cli tmpdir ... File exists").
  mkdir -p "$dir/pmix" && echo "PMIxCliTmpDirBase=$dir/pmix" > "$dir/mpi.conf" || return 1
  # munged as root, on its own socket, with the key the Debian package wrote.
  # Each daemon that fails to start says so, with its log (set -e would exit silently).
  munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" 2>>"$dir/munged.log" || { failed_to_start munged; return 1; }
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -c -f "$dir/slurm.conf" || { failed_to_start slurmctld; return 1; }
  slurmd -c -N localhost -f "$dir/slurm.conf" || { failed_to_start slurmd; return 1; }
  local i
  for i in $(seq 100); do   # up to 10 s; usually under one
    if timeout 2 sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
      echo "slurm_local: up in $dir (export SLURM_CONF=$dir/slurm.conf)"
      return 0
    fi
    sleep 0.1
  done
  echo "slurm_local: the node did not become idle; logs in $dir" >&2
  tail -n 5 "$dir"/*.log >&2 || true
  stop
  return 1
}

failed_to_start() {  # says so with the logs and stops what started
  echo "slurm_local: $1 failed to start; logs in $dir" >&2
  tail -n 5 "$dir"/*.log >&2 || true
  stop
}

stop() {
  local names=(slurmd slurmctld munged) pid n
  # Job steps first: slurmstepd processes whose config is ours (a job left running).
  for pid in $(pgrep -x slurmstepd || true); do
    if grep -qs "$dir" "/proc/$pid/environ" || grep -qs "$dir" "/proc/$pid/cmdline"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for n in "${names[@]}"; do
    pid=$(pid_of "$n")
    [ -n "$pid" ] && alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  local i left
  for i in $(seq 50); do   # up to 5 s, then KILL
    left=0
    for n in "${names[@]}"; do
      pid=$(pid_of "$n")
      [ -n "$pid" ] && alive "$pid" && left=1
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for n in "${names[@]}"; do
    pid=$(pid_of "$n")
    if [ -n "$pid" ] && alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  rm -f "$dir"/{slurmd,slurmctld,munged}.pid
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
