#!/usr/bin/env bash
# Tear down a cluster started by up.sh: cancel its jobs, stop slurmd, slurmctld
# and munged (found through the pid files in STATE_DIR), and kill leftover
# slurmstepd processes of this cluster. Files in STATE_DIR are kept; nothing
# outside STATE_DIR is touched.
#
# Usage: down.sh STATE_DIR
set -euo pipefail

log() { printf '[slurm/down] %s\n' "$*" >&2; }

[[ $# -ge 1 && -n "$1" ]] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[[ -d $1 ]] || { log "no such directory: $1 (nothing to do)"; exit 0; }
STATE_DIR=$(cd "$1" && pwd -P)
CONF=$STATE_DIR/slurm.conf
export SLURM_CONF=$CONF

pid_of() {  # pid_of PIDFILE COMM -> prints pid if alive and named COMM
    local pidfile=$1 comm=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
    echo "$pid"
}

term() {  # term NAME PIDFILE -> send SIGTERM, print the pid if it was running
    local pid
    if ! pid=$(pid_of "$2" "$1"); then
        log "$1 not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    echo "$pid"
}

reap() {  # reap NAME PID: wait up to 10 s for PID to exit, then SIGKILL it
    local name=$1 pid=$2
    [[ -n $pid ]] || return 0
    for _ in $(seq 100); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    log "stopped $name (pid $pid)"
}

# Step daemons of this cluster inherit SLURM_CONF=$CONF from slurmd.
our_stepds() {
    local p
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] || continue
        tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$CONF" && echo "${p#/proc/}"
    done
    return 0
}

descendants() {  # descendants PID -> all child pids, recursively
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

# 1. cancel remaining jobs while slurmctld is still up
if pid_of "$STATE_DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    jobs=$(timeout 10 squeue -h -o '%A' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        log "cancelling jobs: ${jobs//$'\n'/ }"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 50); do
            [[ -z $(timeout 5 squeue -h -t running,completing -o '%A' 2>/dev/null || true) ]] && break
            sleep 0.2
        done
    fi
fi

# 2. daemons
slurmd_pid=$(term slurmd "$STATE_DIR/run/slurmd.pid")
ctld_pid=$(term slurmctld "$STATE_DIR/run/slurmctld.pid")
reap slurmd "$slurmd_pid"
reap slurmctld "$ctld_pid"

# 3. leftover step daemons (and their job processes) of this cluster
for pid in $(our_stepds); do
    log "killing leftover slurmstepd $pid"
    # shellcheck disable=SC2046
    kill -KILL "$pid" $(descendants "$pid") 2>/dev/null || true
done

# 4. munged last (slurm needs it to talk while shutting down)
reap munged "$(term munged "$STATE_DIR/munge/munged.pid")"
