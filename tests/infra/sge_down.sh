#!/usr/bin/env bash
# Stop the single-node Grid Engine started by tests/infra/sge_up.sh: sge_execd, then
# sge_qmaster. Jobs still queued stay in the spool and run when it is started again.
set -uo pipefail

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
            echo "sge_down.sh: $name ($pid) ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

for pidfile in /var/spool/gridengine/execd/*/execd.pid; do
    stop sge_execd "$pidfile"
done
stop sge_qmaster /var/spool/gridengine/qmaster/qmaster.pid 30
echo "sge_down.sh: Grid Engine daemons stopped"
