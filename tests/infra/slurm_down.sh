#!/usr/bin/env bash
# Stop the single-node Slurm started by tests/infra/slurm_up.sh: slurmd, slurmctld, then the
# accounting (slurmdbd and MariaDB). munged is left running: it is cheap and other tools may
# use it.
set -uo pipefail

RUN_DIR=/run/slurm

stop() {  # stop NAME PIDFILE [SECONDS]: SIGTERM, then SIGKILL if it is still there
    local name=$1 pidfile=$2 wait_s=${3:-10} pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq $((wait_s * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm_down.sh: $name ($pid) ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

stop slurmd "$RUN_DIR/slurmd.pid"
stop slurmctld "$RUN_DIR/slurmctld.pid"
stop slurmdbd "$RUN_DIR/slurmdbd.pid"
# MariaDB flushes its buffers on SIGTERM; give it longer before a kill
stop mariadbd /run/mysqld/mysqld.pid 60
echo "slurm_down.sh: Slurm daemons stopped"
