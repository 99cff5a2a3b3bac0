#!/bin/bash
{{sbatch_options}}
# Written by hpoptim: runs {{what}}.
# The time-limit signal (SIGUSR2, sbatch --signal=B:...) reaches only this shell, which
# passes it on to the job as SIG{{signal}} and notes that it did. The job's exit status is
# recorded in its run directory (file {{exit_file_name}}: "<status> <signalled>") so that
# the driver learns it even after Slurm has forgotten the job. Nothing here is evaluated
# from job values: they are quoted words or read verbatim from NUL-separated files.
set -u
child=""
signalled=0
on_time_limit() {
    signalled=1
    if [ -n "$child" ]; then kill -s {{signal}} -- "-$child" 2>/dev/null; fi
}
trap on_time_limit USR2
# scancel and the time limit signal the whole job; the job handles those itself
trap ':' TERM
{{setup}}
# The job runs in a process group of its own (set -m), which gets the signal as a whole,
# under a subshell that waits for it in the foreground. A `wait` here is cut short by
# the signals trapped above, and may then lose the job's status; the subshell's is not.
set -m
(
    set +m
    trap ':' TERM {{signal}}
    "${argv[@]}"
    printf '%s\n' "$?" >"$exit_file.job"
)&
child=$!
set +m
# Slurm may send the signal up to a minute early, even before the job started: pass it on
if [ "$signalled" = 1 ]; then kill -s {{signal}} -- "-$child" 2>/dev/null; fi
status=""
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done
if [ -z "$status" ]; then
    wait "$child"
    status=$?
fi
# the subshell's record is the job's own status; without it, the subshell was killed
if [ -s "$exit_file.job" ]; then read -r status <"$exit_file.job"; fi
rm -f -- "$exit_file.job"
# A process of the job that left its process group and session (setsid: a daemon) escapes
# the proctrack plugins that follow process trees or groups: kill every process that carries
# this job's run directory in its environment before recording the end (bash builtins only).
if [ -n "${HPOPTIM_RUN_DIR:-}" ]; then
    for proc in /proc/[0-9]*; do
        [ "${proc#/proc/}" = "$$" ] && continue
        { while IFS= read -r -d '' entry; do
            if [ "$entry" = "HPOPTIM_RUN_DIR=$HPOPTIM_RUN_DIR" ]; then
                kill -9 "${proc#/proc/}"
                break
            fi
        done <"$proc/environ"; } 2>/dev/null
    done
fi
printf '%s %s\n' "$status" "$signalled" >"$exit_file.tmp" && mv -f -- "$exit_file.tmp" "$exit_file"
exit "$status"
