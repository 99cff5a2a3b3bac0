#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (as root), idempotently.
#
#   bash tests/infra/slurm_up.sh      # install, configure, start, wait until the node is idle
#   bash tests/infra/slurm_down.sh    # stop the daemons (and MariaDB) again
#
# What we learned about the machines this runs on (Debian 12 containers, no systemd):
#   * Debian 12 ships Slurm 22.05 (slurm-wlm) and munge 0.5.15. Installing munge creates
#     /etc/munge/munge.key; we only create one when it is missing.
#   * There is no systemd and no usable cgroup hierarchy, so the daemons are started by hand
#     and the config avoids every cgroup plugin: proctrack/linuxproc, task/none,
#     jobacct_gather/none. There must be NO cgroup.conf: 22.05 does not know
#     CgroupPlugin=disabled (slurmd then dies with "cannot find cgroup plugin for disabled");
#     without the file slurmd loads cgroup/v1, finds nothing to do and runs fine.
#   * slurmd logs "can not load PMIx library" errors at start-up; harmless (MpiDefault=none).
#   * The machine may be a gVisor sandbox: /proc works well enough for proctrack/linuxproc.
#   * munged refuses to run as root and needs /run/munge owned by the munge user.
#   * The hostname resolves to 127.0.0.1 through /etc/hosts; we still pin
#     NodeAddr/SlurmctldHost to 127.0.0.1 so a missing hosts entry cannot break it.
#   * Accounting runs as on most production clusters: slurmdbd (Debian's 22.05) stores jobs
#     in MariaDB, so `sacct` answers for jobs slurmctld has forgotten (MinJobAge seconds after
#     their end, purged by a timer that runs every 60 s). There is no systemd, so mariadbd
#     is started by hand (`service` only wraps the same with slow checks); the Debian package
#     initialises /var/lib/mysql, and root logs in through the unix socket without a password.
#     slurmdbd connects as a user of its own whose random password is kept in slurmdbd.conf
#     (0600, owned by SlurmUser: slurmdbd refuses to start otherwise). slurmdbd must answer
#     before slurmctld starts, and the cluster is registered with `sacctmgr` before that too
#     (slurmctld otherwise keeps its jobs' records queued until someone does). slurmdbd logs
#     "Database settings not recommended values: innodb_buffer_pool_size": harmless here.
#     jobacct_gather/linux reads the jobs' usage from /proc (no cgroups needed).
#     Measured: the packages add about 25 s to a fresh install, MariaDB and slurmdbd about 1 s
#     to the start.
#   * The launcher still reads states and exit codes from `squeue --states=all` first, and its
#     batch script writes the job's exit code into the run directory, which covers clusters
#     without accounting ("Slurm accounting storage is disabled").
#   * RealMemory must not exceed what slurmd measures (the node would be drained as
#     "Low RealMemory"), so CPUs and memory are read from `slurmd -C`.
#   * A time-limit signal (--signal) is delivered by slurmctld's periodic timer, so it may come
#     up to about a minute early (measured here: 3 to 40 s early with --time=1 and a 30 s
#     lead); KillWait is short so that timeouts and scancel end quickly. slurmstepd writes
#     "*** JOB N CANCELLED AT ... ***" to the job's stderr when it delivers that signal even
#     though the job goes on; the job's final state is still FAILED/COMPLETED by its exit code.
#   * The default batch_sched_delay (3 s) delays the start of each batch job by up to 3 s;
#     with batch_sched_delay=0 a job starts within about a second of sbatch.
#   * The machine has 2 CPUs, and test jobs mostly sleep: the partition lets up to 8 jobs
#     share a core (OverSubscribe=FORCE:8) so that test batches run at once.
#   * slurmctld keeps its state (and job id counter) in /var/spool/slurmctld across restarts.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "slurm_up.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
WAIT_S=${SLURM_UP_WAIT_S:-60}
CLUSTER=hpoptim
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_LOG=/var/log/mysql/error.log

# -- 1. packages ---------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null || ! command -v slurmdbd >/dev/null \
    || ! command -v mariadbd >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    # an image may ship with empty package lists: install finds nothing before an update
    apt-get update -q >/dev/null
    apt-get install -y -q slurm-wlm munge slurmdbd mariadb-server >/dev/null
fi
if [[ ${SLURM_UP_PACKAGES_ONLY:-0} == 1 ]]; then
    exit 0  # for tests/infra/test_slurm_up.py
fi

# -- 2. munge ----------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
if ! munge -n </dev/null | unmunge >/dev/null; then
    echo "slurm_up.sh: munged does not answer (see /var/log/munge/munged.log)" >&2
    exit 1
fi

# -- 3. slurm.conf and slurmdbd.conf ----------------------------------------------------------
NODE=$(hostname -s)
HW=$(slurmd -C | head -n 1)
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(field CPUs)
MEM_MB=$(field RealMemory)
CPUS=${CPUS:-$(nproc)}
MEM_MB=${MEM_MB:-$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)}
# the socket/core layout as slurmd sees it (a mismatch only warns, but keep the log clean)
LAYOUT=""
for key in Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
    value=$(field "$key")
    if [[ -n "$value" ]]; then LAYOUT+=" $key=$value"; fi
done

mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd
NEW_CONF=$(mktemp)
trap 'rm -f "$NEW_CONF"' EXIT
cat >"$NEW_CONF" <<EOF
# Single-node test cluster written by tests/infra/slurm_up.sh; edits are overwritten.
ClusterName=${CLUSTER}
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in this container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
# accounting through slurmdbd (MariaDB): sacct works
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# start batch jobs at once (the default batch_sched_delay=3 adds up to 3 s per job)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
# finished jobs stay visible to squeue/scontrol this long (seconds)
MinJobAge=60
# seconds between SIGTERM and SIGKILL at a time limit or scancel
KillWait=5
OverTimeLimit=0
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
MaxJobCount=20000
MaxArraySize=5001
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS}${LAYOUT} RealMemory=${MEM_MB} State=UNKNOWN
# jobs of the test suite mostly sleep: let up to 8 share each core
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
rm -f "$CONF_DIR/cgroup.conf"

# slurmdbd's password for the database: kept from an earlier run, else a new random one
DBD_CONF=$CONF_DIR/slurmdbd.conf
DB_PASS=$(sed -n 's/^StoragePass=//p' "$DBD_CONF" 2>/dev/null || true)
DB_PASS=${DB_PASS:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
NEW_DBD_CONF=$(mktemp)
trap 'rm -f "$NEW_CONF" "$NEW_DBD_CONF"' EXIT
cat >"$NEW_DBD_CONF" <<EOF
# Accounting daemon of the test cluster, written by tests/infra/slurm_up.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=${LOG_DIR}/slurmdbd.log
PidFile=${RUN_DIR}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=${DB_NAME}
StorageUser=${DB_USER}
StoragePass=${DB_PASS}
EOF

CHANGED=0
install_conf() {  # install_conf NEW DEST MODE: copy, and note whether it changed
    if ! [[ -f "$2" ]] || ! cmp -s "$1" "$2"; then CHANGED=1; fi
    cp "$1" "$2"
    chown root:root "$2"  # root is SlurmUser; slurmdbd refuses a file its user does not own
    chmod "$3" "$2"
}
install_conf "$NEW_CONF" "$CONF_DIR/slurm.conf" 0644
install_conf "$NEW_DBD_CONF" "$DBD_CONF" 0600  # it holds the database password

# -- 4. daemons ----------------------------------------------------------------------------------
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
db_up() { mariadb-admin ping >/dev/null 2>&1; }
dbd_up() { sacctmgr --noheader --parsable2 list cluster format=Cluster 2>/dev/null; }
wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

if [[ $CHANGED -eq 1 ]] && { running "$RUN_DIR/slurmctld.pid" || running "$RUN_DIR/slurmd.pid" \
    || running "$RUN_DIR/slurmdbd.pid"; }; then
    echo "slurm_up.sh: the configuration changed; restarting the daemons"
    bash "$(dirname "$0")/slurm_down.sh"
fi

# MariaDB, which holds the accounting database
mkdir -p /run/mysqld /var/log/mysql
chown mysql:mysql /run/mysqld /var/log/mysql
if [[ ! -d /var/lib/mysql/mysql ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
fi
if ! db_up; then
    # setsid and no inherited output: it outlives this script without holding its pipes
    setsid /usr/sbin/mariadbd --user=mysql --log-error="$DB_LOG" \
        --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    if ! wait_for 60 db_up; then
        echo "slurm_up.sh: MariaDB does not answer; last lines of $DB_LOG:" >&2
        tail -n 20 "$DB_LOG" >&2 2>/dev/null || true
        exit 1
    fi
fi
mariadb --batch <<EOF
CREATE DATABASE IF NOT EXISTS ${DB_NAME};
CREATE USER IF NOT EXISTS '${DB_USER}'@'localhost';
ALTER USER '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
GRANT ALL ON ${DB_NAME}.* TO '${DB_USER}'@'localhost';
EOF

# slurmdbd, then the cluster's registration, before slurmctld sends it jobs
if ! running "$RUN_DIR/slurmdbd.pid"; then
    slurmdbd || echo "slurm_up.sh: slurmdbd failed; see $LOG_DIR/slurmdbd.log" >&2
fi
if ! wait_for 60 dbd_up; then
    echo "slurm_up.sh: slurmdbd does not answer; last lines of $LOG_DIR/slurmdbd.log:" >&2
    tail -n 20 "$LOG_DIR/slurmdbd.log" >&2 2>/dev/null || true
    exit 1
fi
if ! grep -qx "$CLUSTER" <<<"$(dbd_up)"; then
    sacctmgr --immediate add cluster "$CLUSTER" >/dev/null
fi

if ! running "$RUN_DIR/slurmctld.pid"; then
    # -i: ignore state files that a different config left behind
    slurmctld -i || echo "slurm_up.sh: slurmctld failed; see $LOG_DIR/slurmctld.log" >&2
fi
if ! running "$RUN_DIR/slurmd.pid"; then
    slurmd || echo "slurm_up.sh: slurmd failed; see $LOG_DIR/slurmd.log" >&2
fi

# -- 5. wait until the node is idle ---------------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
state=""
while ((SECONDS < deadline)); do
    state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle | mixed | allocated)
            echo "slurm_up.sh: Slurm $(sinfo --version | awk '{print $2}') is up with" \
                "accounting; node $NODE is $state (CPUs=$CPUS RealMemory=${MEM_MB}MB)"
            exit 0
            ;;
        down* | drain* | fail*)
            scontrol update nodename="$NODE" state=resume 2>/dev/null || true
            ;;
    esac
    sleep 1
done
echo "slurm_up.sh: node $NODE did not become idle within ${WAIT_S}s (last state: '${state}')." >&2
echo "  see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log; last lines:" >&2
tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true
exit 1
