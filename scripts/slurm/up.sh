#!/usr/bin/env bash
# Bring up a single-node SLURM cluster (munged + slurmctld + slurmd) on localhost.
#
# Usage: up.sh [STATE_DIR]
#   STATE_DIR  directory holding every file of this cluster (config, munge key,
#              sockets, pid files, logs, spool). Created if missing.
#              Default: a new `mktemp -d`.
#
# Progress and errors go to stderr; stdout carries only `export ...` lines, so a
# caller can do:   eval "$(scripts/slurm/up.sh /tmp/slurm-state)"
#
# Optional environment overrides:
#   SLURM_LOCAL_CTLD_PORT    slurmctld port (default 6817)
#   SLURM_LOCAL_SLURMD_PORT  slurmd port    (default 6818)
#   SLURM_LOCAL_CPUS         CPUs of the node (default: nproc)
#   SLURM_LOCAL_MEM_MB       RealMemory of the node in MB (default: MemTotal minus 5%)
#   SLURM_LOCAL_CRED_EXPIRE  AuthInfo cred_expire, i.e. requeue delay in s (default 10, min 5)
#   SLURM_LOCAL_TIMEOUT      seconds to wait for the node to become idle (default 60)
set -euo pipefail

log() { printf '[slurm/up] %s\n' "$*" >&2; }
die() { printf '[slurm/up] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in munged mungekey munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; install: apt-get install -y slurm-wlm munge"
done
[[ $(id -u) -eq 0 ]] || die "must run as root (slurmd has to launch jobs as the submitting user)"

if [[ $# -ge 1 && -n "$1" ]]; then
    STATE_DIR=$1
    mkdir -p "$STATE_DIR"
else
    STATE_DIR=$(mktemp -d /tmp/slurm-local.XXXXXX)
fi
STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
# Non-root users need to reach the munge socket and read slurm.conf.
chmod 755 "$STATE_DIR"

for var in SLURM_LOCAL_CTLD_PORT SLURM_LOCAL_SLURMD_PORT SLURM_LOCAL_CPUS SLURM_LOCAL_MEM_MB \
           SLURM_LOCAL_CRED_EXPIRE SLURM_LOCAL_TIMEOUT; do
    [[ -z ${!var:-} || ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer (got '${!var}')"
done

NODE=$(hostname -s)
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-6818}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}

CONF=$STATE_DIR/slurm.conf
MUNGE_DIR=$STATE_DIR/munge
MUNGE_KEY=$MUNGE_DIR/munge.key
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_PID=$MUNGE_DIR/munged.pid
CTLD_PID=$STATE_DIR/run/slurmctld.pid
SLURMD_PID=$STATE_DIR/run/slurmd.pid
LOG_DIR=$STATE_DIR/log

# AF_UNIX socket paths are limited to 107 bytes.
(( ${#MUNGE_SOCKET} <= 100 )) || die "STATE_DIR path too long for a unix socket: $MUNGE_SOCKET"

export SLURM_CONF=$CONF

# pid_alive PIDFILE COMM -> true if the pid in PIDFILE is running and its name is COMM
pid_alive() {
    local pidfile=$1 comm=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# daemon_gone PIDFILE COMM -> true if the daemon is not running and does not
# show up within 3 s (covers the moment before a daemon writes its pid file)
daemon_gone() {
    for _ in $(seq 15); do
        pid_alive "$1" "$2" && return 1
        sleep 0.2
    done
    return 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_env() {
    {
        echo "export SLURM_CONF=$CONF"
        echo "# state: $STATE_DIR  munge socket: $MUNGE_SOCKET  (slurm finds it via AuthInfo in slurm.conf)"
    } >"$STATE_DIR/env.sh"
    cat "$STATE_DIR/env.sh"
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true; }

dump_logs() {
    local f
    for f in "$MUNGE_DIR/munged.log" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        [[ -f $f ]] || continue
        printf '\n===== tail -n 40 %s =====\n' "$f" >&2
        tail -n 40 "$f" >&2
    done
    sinfo -N -l >&2 2>&1 || true
    scontrol show node "$NODE" >&2 2>&1 || true
}

if pid_alive "$MUNGE_PID" munged && pid_alive "$CTLD_PID" slurmctld && pid_alive "$SLURMD_PID" slurmd; then
    log "already running from $STATE_DIR (node state: $(node_state))"
    print_env
    exit 0
fi

start_ts=$(date +%s)
log "state dir: $STATE_DIR"
mkdir -p "$MUNGE_DIR" "$STATE_DIR/run" "$LOG_DIR" "$STATE_DIR/ctld" "$STATE_DIR/spool"
# munged refuses directories writable by group/other.
chmod 755 "$MUNGE_DIR"
chmod 700 "$STATE_DIR/ctld" "$STATE_DIR/spool"

# ---------------------------------------------------------------- munge ----
if pid_alive "$MUNGE_PID" munged; then
    log "munged already running (pid $(cat "$MUNGE_PID"))"
else
    if [[ ! -s $MUNGE_KEY ]]; then
        mungekey --create --keyfile="$MUNGE_KEY"
        chmod 600 "$MUNGE_KEY"
    fi
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$MUNGE_PID"
    # munged runs as root here (it warns about that but works); the system
    # key /etc/munge/munge.key is not touched.
    munged --key-file="$MUNGE_KEY" --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_PID" \
        --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        || { dump_logs; die "munged failed to start"; }
fi
for _ in $(seq 50); do
    if munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null \
    || { dump_logs; die "munge credential round-trip failed"; }
log "munged ok (socket $MUNGE_SOCKET)"

# ----------------------------------------------------------- slurm.conf ----
# Regenerated on every start (env overrides apply; saved job/node state is kept),
# but left alone while slurmctld from this STATE_DIR is running.
if ! pid_alive "$CTLD_PID" slurmctld; then
    CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
    # Use the socket/core/thread layout slurmd detects when it matches CPUS,
    # otherwise just CPUs= (config_overrides below keeps the node from draining).
    TOPO=
    hw=$(slurmd -C 2>/dev/null | head -n1 || true)
    if [[ " $hw " == *" CPUs=$CPUS "* ]]; then
        for key in Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
            val=$(grep -oE "(^| )$key=[0-9]+" <<<"$hw" | tr -d ' ' || true)
            if [[ -n $val ]]; then TOPO+=" $val"; fi
        done
    fi
    if [[ -n ${SLURM_LOCAL_MEM_MB:-} ]]; then
        MEM=$SLURM_LOCAL_MEM_MB
    else
        total=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
        MEM=$(( total - (total / 20 > 256 ? total / 20 : 256) ))
        (( MEM > 0 )) || MEM=$total
    fi
    DEF_MEM_PER_CPU=$(( MEM / CPUS ))
    CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-10}
    cat >"$CONF" <<EOF
# Generated by scripts/slurm/up.sh -- single-node local cluster.
ClusterName=stylelab-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root

AuthType=auth/munge
CredType=cred/munge
# cred_expire (min 5, default 120) is also the delay before a requeued job may
# start again.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=$CRED_EXPIRE

StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups anywhere.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# Report the configured CPUs/memory rather than draining on a mismatch.
SlurmdParameters=config_overrides

SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU

# Short timeouts for tests.
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
ReturnToService=2
JobRequeue=1

NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS$TOPO RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF (CPUs=$CPUS RealMemory=${MEM}MB)"
else
    log "slurmctld running; keeping existing $CONF"
    CTLD_PORT=$(awk -F= '/^SlurmctldPort=/ {print $2}' "$CONF")
    SLURMD_PORT=$(awk -F= '/^SlurmdPort=/ {print $2}' "$CONF")
fi

# --------------------------------------------------------- slurm daemons ----
if pid_alive "$CTLD_PID" slurmctld; then
    log "slurmctld already running (pid $(cat "$CTLD_PID"))"
else
    port_in_use "$CTLD_PORT" && die "port $CTLD_PORT already in use (another slurmctld?); set SLURM_LOCAL_CTLD_PORT"
    rm -f "$CTLD_PID"
    slurmctld -f "$CONF" || { dump_logs; die "slurmctld failed to start"; }
fi
for _ in $(seq 100); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && break
    if daemon_gone "$CTLD_PID" slurmctld; then dump_logs; die "slurmctld exited (see logs above)"; fi
    sleep 0.2
done
scontrol ping 2>/dev/null | grep -q 'is UP' || { dump_logs; die "slurmctld not responding"; }
log "slurmctld ok"

if pid_alive "$SLURMD_PID" slurmd; then
    log "slurmd already running (pid $(cat "$SLURMD_PID"))"
else
    port_in_use "$SLURMD_PORT" && die "port $SLURMD_PORT already in use (another slurmd?); set SLURM_LOCAL_SLURMD_PORT"
    rm -f "$SLURMD_PID"
    slurmd -f "$CONF" -N "$NODE" || { dump_logs; die "slurmd failed to start"; }
fi

deadline=$(( $(date +%s) + TIMEOUT ))
state=
while (( $(date +%s) < deadline )); do
    state=$(node_state)
    if daemon_gone "$SLURMD_PID" slurmd; then dump_logs; die "slurmd exited (see logs above)"; fi
    case $state in
        idle|mixed|allocated|completing) break ;;
        down*|drain*)
            # e.g. restarted from an old STATE_DIR; put it back in service.
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
case $state in
    idle|mixed|allocated|completing) ;;
    *) dump_logs; die "node $NODE not idle after ${TIMEOUT}s (state: '${state}')" ;;
esac
log "node $NODE is $state; up in $(( $(date +%s) - start_ts ))s"
print_env
