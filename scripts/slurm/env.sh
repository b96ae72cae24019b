#!/usr/bin/env bash
# Environment for talking to a cluster started by up.sh.
#   source scripts/slurm/env.sh STATE_DIR     # exports SLURM_CONF
#   eval "$(scripts/slurm/env.sh STATE_DIR)"  # same, from a subshell
_slurm_state=${1:?usage: env.sh STATE_DIR}
_slurm_state=$(cd "$_slurm_state" && pwd -P) || return 1 2>/dev/null || exit 1
if [[ ! -f $_slurm_state/slurm.conf ]]; then
    echo "env.sh: no slurm.conf in $_slurm_state (run up.sh first)" >&2
    unset _slurm_state
    # shellcheck disable=SC2317
    return 1 2>/dev/null || exit 1
fi
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    export SLURM_CONF=$_slurm_state/slurm.conf
else
    echo "export SLURM_CONF=$_slurm_state/slurm.conf"
fi
unset _slurm_state
