#!/bin/bash
# Written by hpoptim: runs {{what}}.
# Grid Engine array task $SGE_TASK_ID reads its argv and environment verbatim from the
# NUL-separated files TASKS/$SGE_TASK_ID.argv and .env; TASKS/$SGE_TASK_ID is its run
# directory. Nothing here is evaluated from job values.
# Time limit: Grid Engine kills the whole job with SIGKILL at h_rt. Before that, the
# watchdog below sends SIG{{signal}} to the job {{lead_s}} s ahead of the limit and leaves a
# marker ({{exit_file_name}}.signalled), so a job killed at h_rt is known as timed out.
# The job's exit status is recorded in its run directory (file {{exit_file_name}}:
# "<status> <signalled>"), so the driver learns it without qacct.
set -u
task={{tasks}}/"$SGE_TASK_ID"
mapfile -d '' -t argv <"$task.argv"
mapfile -d '' -t env <"$task.env"
if [ "${#env[@]}" -gt 0 ]; then export -- "${env[@]}"; fi
exit_file="$task/{{exit_file_name}}"
rm -f -- "$exit_file.signalled" "$exit_file.job"
signal_after_s={{signal_after_s}}
# the signal goes to the whole process group: the job dies of it (or handles it), this
# shell and the job's wrapper note it and go on
trap ':' {{signal}}
(
    trap ':' {{signal}}
    "${argv[@]}"
    printf '%s\n' "$?" >"$exit_file.job"
)&
child=$!
watchdog=""
if [ -n "$signal_after_s" ]; then
    (
        trap '' {{signal}}
        # a builtin sleep (read times out on a pipe nobody writes): no process is left
        # behind when this watchdog is killed
        read -r -t "$signal_after_s" <> <(:)
        : >"$exit_file.signalled"
        kill -s {{signal}} 0
    )&
    watchdog=$!
fi
# `wait` returns early when a trapped signal comes; the wrapper's record is the job's status
status=""
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done
if [ -z "$status" ]; then
    wait "$child"
    status=$?
fi
if [ -n "$watchdog" ]; then kill -s KILL "$watchdog" 2>/dev/null; fi
if [ -s "$exit_file.job" ]; then read -r status <"$exit_file.job"; fi
signalled=0
if [ -e "$exit_file.signalled" ]; then signalled=1; fi
rm -f -- "$exit_file.job" "$exit_file.signalled"
printf '%s %s\n' "$status" "$signalled" >"$exit_file.tmp" && mv -f -- "$exit_file.tmp" "$exit_file"
exit "$status"
