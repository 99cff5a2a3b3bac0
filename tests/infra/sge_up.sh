#!/usr/bin/env bash
# Start a single-node Son of Grid Engine on this machine (as root), idempotently.
#
#   bash tests/infra/sge_up.sh      # install, configure, start, wait until the queue is open
#   bash tests/infra/sge_down.sh    # stop the daemons again
#
# What we learned about the machines this runs on (Debian 12 containers, no systemd):
#   * Debian 12 ships Son of Grid Engine 8.1.9 (gridengine-master, -exec, -client). With the
#     debconf answers below the packages create the cell `default` under /var/lib/gridengine
#     (berkeleydb spooling in /var/spool/gridengine) and the manager sgeadmin; their init
#     scripts are not run (no runlevel), so the daemons are started by hand here.
#   * sge_qmaster refuses every client whose address resolves to a different name than the
#     one the client gives ("client IP resolved to host name localhost. This is not identical
#     to clients host name vm"): in containers the host name and `localhost` share 127.0.0.1.
#     Grid Engine's own host_aliases file makes them one host for Grid Engine alone, so
#     /etc/hosts (which the single-node Slurm of slurm_up.sh relies on) stays untouched, and
#     the two scripts work in either order.
#   * Jobs of the test suite run as root: min_uid/min_gid are lowered to 0.
#   * The 2 CPUs are shared and test jobs mostly sleep: the queue has 4 slots and no load
#     threshold (the default np_load_avg=1.75 closes the queue on a busy machine).
#   * The scheduler runs every second and on each submit and job end (flush_*_sec=1); the
#     default 15 s interval would make every test wait.
#   * Accounting (qacct) is on and flushed at once; the launcher reads exit-status files first,
#     so it does not depend on it.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "sge_up.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
WAIT_S=${SGE_UP_WAIT_S:-60}
SLOTS=${SGE_UP_SLOTS:-4}
COMMON=$SGE_ROOT/$SGE_CELL/common
RUN_DIR=/var/run/gridengine
QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
NODE=$(hostname)

# -- 1. packages ---------------------------------------------------------------------------
if ! command -v sge_qmaster >/dev/null || ! command -v sge_execd >/dev/null \
    || ! command -v qsub >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    for pkg in gridengine-common gridengine-client gridengine-master gridengine-exec; do
        printf '%s shared/gridengineconfig boolean true\n' "$pkg"
        printf '%s shared/gridenginecell string %s\n' "$pkg" "$SGE_CELL"
        printf '%s shared/gridenginemaster string %s\n' "$pkg" "$NODE"
    done | debconf-set-selections
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends \
        gridengine-master gridengine-exec gridengine-client >/dev/null
fi
if [[ ${SGE_UP_PACKAGES_ONLY:-0} == 1 ]]; then
    exit 0  # for tests/infra/test_sge_up.py
fi
if [[ ! -f $COMMON/bootstrap ]]; then
    echo "sge_up.sh: no cell in $COMMON (were the packages configured?)" >&2
    exit 1
fi

# -- 2. name resolution: the host name and localhost are one host for Grid Engine -----------
# (a host name that does not resolve at all gets the loopback address Slurm's setup uses)
if ! getent hosts "$NODE" >/dev/null; then
    echo "127.0.0.1 $NODE" >>/etc/hosts
fi
aliases="$NODE localhost"
full=$(hostname -f 2>/dev/null || true)
if [[ -n $full && $full != "$NODE" ]]; then aliases+=" $full"; fi
echo "$aliases" >"$COMMON/host_aliases"
echo "$NODE" >"$COMMON/act_qmaster"

# -- 3. daemons ----------------------------------------------------------------------------
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}
mkdir -p "$RUN_DIR"
chown sgeadmin:sgeadmin "$RUN_DIR"
if ! running "$QMASTER_PID"; then
    # a killed qmaster leaves its lock file behind and then refuses to start
    rm -f /var/spool/gridengine/qmaster/lock "$QMASTER_PID"
    setsid /usr/sbin/sge_qmaster </dev/null >/dev/null 2>&1
fi
if ! wait_for "$WAIT_S" qconf -sh; then
    echo "sge_up.sh: sge_qmaster does not answer; last lines of its messages:" >&2
    tail -n 20 /var/spool/gridengine/qmaster/messages >&2 2>/dev/null || true
    exit 1
fi

# -- 4. configuration ----------------------------------------------------------------------
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
quiet() {  # quiet COMMAND...: run it, showing its output only if it fails
    local out
    if ! out=$("$@" 2>&1); then
        echo "sge_up.sh: $* failed: $out" >&2
        return 1
    fi
}
qconf -ah "$NODE" >/dev/null 2>&1 || true
qconf -as "$NODE" >/dev/null 2>&1 || true

qconf -sconf global | sed -E \
    -e 's/^(min_uid|min_gid)[[:space:]].*/\1 0/' \
    -e '/^reporting_params/,/[^\\]$/d' >"$TMP/global"
cat >>"$TMP/global" <<EOF
reporting_params accounting=true reporting=false flush_time=00:00:01 \
accounting_flush_time=00:00:00 joblog=false sharelog=00:00:00
EOF
sed -i -E 's/^(max_unheard)[[:space:]].*/\1 00:00:30/; s/^(load_report_time)[[:space:]].*/\1 00:00:05/' \
    "$TMP/global"
quiet qconf -Mconf "$TMP/global"

qconf -ssconf | sed -E \
    -e 's/^(schedule_interval)[[:space:]].*/\1 0:0:1/' \
    -e 's/^(flush_submit_sec|flush_finish_sec)[[:space:]].*/\1 1/' >"$TMP/sched"
quiet qconf -Msconf "$TMP/sched"

cat >"$TMP/smp" <<EOF
pe_name            smp
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
if qconf -sp smp >/dev/null 2>&1; then
    quiet qconf -Mp "$TMP/smp"
else
    quiet qconf -Ap "$TMP/smp"
fi

if ! qconf -se "$NODE" >/dev/null 2>&1; then
    printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\n' \
        "$NODE" >"$TMP/exechost"
    printf 'xuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\n' \
        >>"$TMP/exechost"
    printf 'report_variables NONE\n' >>"$TMP/exechost"
    quiet qconf -Ae "$TMP/exechost"
fi

qconf -sq 2>/dev/null | sed -E \
    -e "s/^(qname)[[:space:]].*/\1 all.q/" \
    -e "s/^(hostlist)[[:space:]].*/\1 $NODE/" \
    -e "s/^(load_thresholds)[[:space:]].*/\1 NONE/" \
    -e "s/^(pe_list)[[:space:]].*/\1 smp/" \
    -e "s/^(slots)[[:space:]].*/\1 $SLOTS/" \
    -e "s|^(shell)[[:space:]].*|\1 /bin/bash|" >"$TMP/queue"
if qconf -sq all.q >/dev/null 2>&1; then
    quiet qconf -Mq "$TMP/queue"
else
    quiet qconf -Aq "$TMP/queue"
fi

# the execution daemon; its pid file lives in a spool directory named as the daemon
# resolves its own host (localhost here), so look for it by pattern
execd_running() {
    local pidfile
    for pidfile in /var/spool/gridengine/execd/*/execd.pid; do
        if running "$pidfile"; then return 0; fi
    done
    return 1
}
if ! execd_running; then
    mkdir -p /var/spool/gridengine/execd
    chown sgeadmin:sgeadmin /var/spool/gridengine/execd
    setsid /usr/sbin/sge_execd </dev/null >/dev/null 2>&1
fi
# a queue in error state (E) after a lost job would take no more jobs
qmod -c "all.q@$NODE" >/dev/null 2>&1 || true
qmod -e "all.q@$NODE" >/dev/null 2>&1 || true

# -- 5. wait until the queue instance takes jobs ----------------------------------------------
queue_open() {  # the execd reports load and the queue instance has no state flag
    local line
    line=$(qstat -f -q "all.q@$NODE" 2>/dev/null | awk -v q="all.q@$NODE" '$1 == q')
    [[ -n $line ]] && [[ $(awk '{print NF}' <<<"$line") -eq 5 ]] \
        && [[ $(awk '{print $4}' <<<"$line") != "-NA-" ]]
}
if ! wait_for "$WAIT_S" queue_open; then
    echo "sge_up.sh: queue all.q@$NODE did not open within ${WAIT_S}s:" >&2
    qstat -f >&2 2>/dev/null || true
    tail -n 20 /var/spool/gridengine/execd/*/messages >&2 2>/dev/null || true
    exit 1
fi
echo "sge_up.sh: Grid Engine $(qstat -help 2>/dev/null | head -n 1 | awk '{print $2}') is up;" \
    "queue all.q@$NODE has $SLOTS slots, parallel environment smp, accounting on"
