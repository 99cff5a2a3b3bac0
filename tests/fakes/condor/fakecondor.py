"""A stand-in for HTCondor's submit-side CLI and one execute machine, for tests.

``condor_submit``, ``condor_submit_bid``, ``condor_q``, ``condor_rm`` and
``condor_history`` (scripts next to this file) call :func:`main`; a schedd process
(:func:`serve`, started by the test fixture) runs the queued jobs as real local
processes on ``slots`` CPUs and writes each submission's job event log in
HTCondor's own format. State lives in ``$FAKE_CONDOR_DIR`` (``queue.json`` under
a lock), so every tool sees what the schedd does.

As strict as the real tools where the launcher could go wrong: every submit
description is parsed with ``htcondor2.Submit`` (the bindings' own parser), and
refused like ``condor_submit`` refuses it: a missing executable or log directory,
an unknown universe, a ``requirements`` or custom attribute that is no ClassAd
expression, a non-integer request, a bad ``concurrency_limits``, unbalanced
``arguments``, an undefined ``$(macro)``. Unused lines draw condor_submit's
warning. Jobs get the submitter's environment only with ``getenv``, and are
tracked as HTCondor tracks them (every process of the job's session is killed).
``condor_q -json`` answers with HTCondor's attribute names and evaluates
``-constraint`` as a ClassAd expression; with no match it prints nothing.

Faults, injected by tests with :func:`inject`: ``evict`` (the job is killed and
goes back to idle; the schedd starts it again), ``hold`` (killed, held with a
reason), ``vanish`` (killed and dropped without an event), ``outage`` (every
tool fails to reach the schedd for N seconds while jobs go on and the log is
written) and ``lose_reply`` (the next ``condor_submit`` queues its jobs, then
fails as if the connection broke before the answer).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

UNIVERSES = {"vanilla", "docker", "container", "local", "scheduler", "java", "parallel", "grid"}
KNOWN = {
    "universe", "executable", "arguments", "output", "error", "log", "transfer_executable",
    "getenv", "batch_name", "initialdir", "request_cpus", "request_gpus", "request_memory",
    "request_disk", "requirements", "concurrency_limits", "allowed_job_duration",
    "environment", "rank", "periodic_remove", "should_transfer_files", "notification",
    "accounting_group", "max_retries", "priority", "input", "stream_output", "stream_error",
}  # fmt: skip
_MACRO = re.compile(r"\$\((\w+)\)")
_LIMIT = re.compile(r"^[A-Za-z0-9_.]+(:[0-9.]+)?$")
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
_NO_SCHEDD = (
    "ERROR: Failed to connect to local queue manager\n"
    "CEDAR:6001:Failed to connect to <127.0.0.1:9618>\n"
)


# -- state ------------------------------------------------------------------------------
def state_dir() -> Path:
    return Path(os.environ["FAKE_CONDOR_DIR"])


@contextlib.contextmanager
def locked(directory: Path | None = None) -> Iterator[dict[str, Any]]:
    """The queue, read and written back under the lock."""
    directory = directory or state_dir()
    with open(directory / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / "queue.json"
        state = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("next_cluster", 1)
        state.setdefault("jobs", {})
        state.setdefault("history", [])
        state.setdefault("outage_until", 0.0)
        state.setdefault("submit_calls", [])
        state.setdefault("envs", {})
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


def inject(directory: Path, fault: str, native: str = "", value: Any = None) -> None:
    """Inject ``fault`` (evict/hold/vanish for job ``native``; outage for ``value`` s)."""
    with locked(directory) as state:
        if fault == "outage":
            state["outage_until"] = time.time() + float(value)
        elif fault == "lose_reply":  # the next condor_submit queues, then fails to say so
            state["lose_replies"] = state.get("lose_replies", 0) + 1
        else:
            state["jobs"][native][f"_{fault}"] = value if value is not None else True


# -- the event log --------------------------------------------------------------------------
_USAGE = "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  {} Usage\n"
_BYTES = "\t0  -  {} Bytes {} By Job\n"


def write_event(job: dict[str, Any], code: int, header: str, body: str = "") -> None:
    cluster, proc = job["ClusterId"], job["ProcId"]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    text = f"{code:03d} ({cluster:03d}.{proc:03d}.000) {stamp} {header}\n{body}...\n"
    fd = os.open(job["UserLog"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _usage(kinds: tuple[str, ...]) -> str:
    return "".join(_USAGE.format(k) for k in kinds)


def _bytes(total: bool) -> str:
    kinds = ("Run", "Total") if total else ("Run",)
    return "".join(_BYTES.format(k, d) for k in kinds for d in ("Sent", "Received"))


def terminated_body(status: int) -> str:
    if status >= 0:
        first = f"\t(1) Normal termination (return value {status})\n"
    else:
        first = f"\t(0) Abnormal termination (signal {-status})\n\t(0) No core file\n"
    runs = ("Run Remote", "Run Local", "Total Remote", "Total Local")
    return first + _usage(runs) + _bytes(True)


# -- condor_submit --------------------------------------------------------------------------
class Refused(Exception):
    pass


def split_arguments(value: str) -> list[str]:
    """HTCondor's new ``arguments`` syntax (double-quoted, '' inside single quotes)."""
    if not (value.startswith('"') and value.endswith('"') and len(value) >= 2):
        return value.split()
    text, args, cur, quoted, i, has = value[1:-1].replace('""', '"'), [], "", False, 0, False
    while i < len(text):
        c = text[i]
        if c == "'":
            if quoted and text[i + 1 : i + 2] == "'":
                cur, i = cur + "'", i + 2
                continue
            quoted, has = not quoted, True
        elif c.isspace() and not quoted:
            if cur or has:
                args.append(cur)
            cur, has = "", False
        else:
            cur += c
        i += 1
    if quoted:
        raise Refused("ERROR: Found mismatched single quote in arguments")
    if cur or has:
        args.append(cur)
    return args


def _expr(text: str, what: str) -> Any:
    import classad2

    try:
        return classad2.ExprTree(text)
    except Exception:
        raise Refused(f"ERROR: Parse error in expression for {what}: {text}") from None


def _key(key: str) -> str:
    """Submit commands are case-insensitive; a custom attribute keeps its name's case."""
    if key.lower().startswith(("my.", "+")):
        return "MY." + key.split(".", 1)[1] if "." in key[:3] else "MY." + key[1:]
    return key.lower()


def describe(text: str, submit_dir: Path) -> tuple[dict[str, str], int]:
    """The submit commands of ``text`` and its queue count, refused as condor_submit would."""
    import htcondor2

    try:
        sub = htcondor2.Submit(text)
    except Exception as exc:
        raise Refused(f"ERROR: on Line ?? of submit file: {exc}") from None
    commands = {_key(k): v for k, v in dict(sub).items()}
    count = int(sub.getQArgs() or "1")
    _check(commands, submit_dir)
    split_arguments(commands.get("arguments", ""))
    return commands, count


def _check(commands: dict[str, str], submit_dir: Path) -> None:
    universe = commands.get("universe", "vanilla").lower()
    if universe not in UNIVERSES:
        raise Refused(f"ERROR: I don't know about the '{universe}' universe.")
    exe = commands.get("executable")
    if not exe or not os.access(exe, os.X_OK):
        raise Refused(f"ERROR: Executable file {exe} does not exist")
    log = Path(submit_dir, commands.get("log", ""))
    if "log" in commands and not log.parent.is_dir():
        raise Refused(f'ERROR: Invalid log file: "{log}" (No such file or directory)')
    for key in ("request_cpus", "request_gpus", "request_memory", "request_disk"):
        if key in commands and not commands[key].strip().isdigit():
            raise Refused(f"ERROR: {key} = {commands[key]} is not an integer")
    if "requirements" in commands:
        _expr(commands["requirements"], "requirements")
    _check_values(commands)


def _check_values(commands: dict[str, str]) -> None:
    for key, value in commands.items():
        if key.startswith("MY."):
            _expr(value, key)
    for limit in commands.get("concurrency_limits", "").replace(" ", "").split(","):
        if limit and not _LIMIT.match(limit):
            raise Refused(f"ERROR: Invalid concurrency limit '{limit}'")
    if "getenv" in commands and commands["getenv"].lower() not in ("true", "false"):
        raise Refused(f"ERROR: getenv = {commands['getenv']} is not a boolean")
    for key in commands:
        if key not in KNOWN and not key.startswith("MY."):
            sys.stderr.write(
                f"WARNING: the line '{key} = {commands[key]}' was unused by "
                "condor_submit. Is it a typo?\n"
            )


def _expand(value: str, cluster: int, proc: int) -> str:
    macros = {"Process": proc, "ProcId": proc, "Cluster": cluster, "ClusterId": cluster}

    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in macros:
            raise Refused(f"ERROR: undefined macro $({match.group(1)})")
        return str(macros[match.group(1)])

    return _MACRO.sub(sub, value)


def job_ad(commands: dict[str, str], cluster: int, proc: int, submit_dir: Path) -> dict[str, Any]:
    import classad2

    iwd = Path(submit_dir, commands.get("initialdir", "."))
    get = {k: _expand(v, cluster, proc) for k, v in commands.items()}
    ad: dict[str, Any] = {
        "ClusterId": cluster, "ProcId": proc, "JobStatus": IDLE,
        "Owner": os.environ.get("USER", ""),
        "QDate": int(time.time()), "JobUniverse": 5, "Cmd": get["executable"],
        "Args": get.get("arguments", ""), "Iwd": str(iwd),
        "Out": str(iwd / get.get("output", "/dev/null")),
        "Err": str(iwd / get.get("error", "/dev/null")),
        "UserLog": str(iwd / get["log"]) if "log" in get else "",
        "RequestCpus": int(get.get("request_cpus", "1")),
        "JobBatchName": get.get("batch_name", "").strip('"'),
        "NumJobStarts": 0, "Requirements": get.get("requirements", "true"),
        "ConcurrencyLimits": get.get("concurrency_limits", ""),
    }  # fmt: skip
    for key, value in get.items():
        if key.startswith("MY."):
            ad[key[3:]] = classad2.ExprTree(value).eval()
    return ad


def submit(program: str, argv: list[str]) -> int:
    bid = None
    if program == "condor_submit_bid":
        if not argv or not argv[0].isdigit():
            sys.stderr.write("usage: condor_submit_bid BID SUBMIT_FILE\n")
            return 1
        bid, argv = int(argv[0]), argv[1:]
    if len(argv) != 1:
        sys.stderr.write("usage: condor_submit SUBMIT_FILE\n")
        return 1
    path = Path(argv[0])
    try:
        commands, count = describe(path.read_text(), Path.cwd())
        with locked() as state:
            if time.time() < state["outage_until"]:
                sys.stderr.write(_NO_SCHEDD)
                return 1
            cluster = state["next_cluster"]
            ads = [job_ad(commands, cluster, p, Path.cwd()) for p in range(count)]
            state["next_cluster"] += 1
            state["submit_calls"].append({"file": str(path), "bid": bid, "count": count})
            getenv = commands.get("getenv", "false").lower() == "true"
            state["envs"][str(cluster)] = dict(os.environ) if getenv else {}  # one per cluster
            for ad in ads:
                ad["_bid"] = bid
                state["jobs"][f"{cluster}.{ad['ProcId']}"] = ad
                if ad["UserLog"]:
                    host = "<127.0.0.1:9618?addrs=127.0.0.1-9618>"
                    write_event(ad, 0, f"Job submitted from host: {host}")
            lost = state.get("lose_replies", 0) > 0
            state["lose_replies"] = max(0, state.get("lose_replies", 0) - 1)
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if lost:
        sys.stderr.write("ERROR: Failed to commit job submission into the queue.\n" + _NO_SCHEDD)
        return 1
    print(f"Submitting job(s){'.' * count}\n{count} job(s) submitted to cluster {cluster}.")
    return 0


# -- condor_q, condor_history, condor_rm ---------------------------------------------------
def _public(ad: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ad.items() if not k.startswith("_")}


def _select(
    ads: list[dict[str, Any]], args: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import classad2

    options: dict[str, Any] = {"json": False, "attributes": None, "limit": None}
    ids, constraint, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "-json":
            options["json"] = True
        elif arg in ("-constraint", "-attributes", "-limit"):
            if i + 1 >= len(args):
                raise Refused(f"Error: Argument {arg} requires another argument")
            value, i = args[i + 1], i + 1
            if arg == "-constraint":
                constraint = _expr(value, "-constraint")
            else:
                options[arg[1:]] = value.split(",") if arg == "-attributes" else int(value)
        elif re.fullmatch(r"\d+(\.\d+)?", arg):
            ids.append(arg)
        else:
            raise Refused(f"Error: unrecognized argument {arg}")
        i += 1
    chosen = []
    for ad in ads:
        native = f"{ad['ClusterId']}.{ad['ProcId']}"
        if ids and not any(native == n or str(ad["ClusterId"]) == n for n in ids):
            continue
        if constraint is not None and constraint.eval(classad2.ClassAd(_public(ad))) is not True:
            continue
        chosen.append(ad)
    return chosen, options


def _print(ads: list[dict[str, Any]], options: dict[str, Any]) -> None:
    if options["limit"] is not None:
        ads = ads[: options["limit"]]
    attrs = options["attributes"]
    shown = [{k: v for k, v in _public(ad).items() if attrs is None or k in attrs} for ad in ads]
    if not shown:
        return  # HTCondor prints nothing at all for no match
    if options["json"]:
        print("[\n" + ",\n".join(json.dumps(ad, indent=2) for ad in shown) + "\n]")
    else:
        for ad in shown:
            print(f"{ad.get('ClusterId')}.{ad.get('ProcId')} {ad.get('JobStatus')}")


def query(program: str, argv: list[str]) -> int:
    with locked() as state:
        if time.time() < state["outage_until"]:
            sys.stderr.write(_NO_SCHEDD)
            return 1
        ads = list(state["jobs"].values()) if program == "condor_q" else state["history"][::-1]
        chosen, options = _select(ads, argv)
    _print(chosen, options)
    return 0


def remove(argv: list[str]) -> int:
    with locked() as state:
        if time.time() < state["outage_until"]:
            sys.stderr.write(_NO_SCHEDD)
            return 1
        if not argv:
            raise Refused("usage: condor_rm [-constraint EXPR] CLUSTER[.PROC] ...")
        chosen, _ = _select(list(state["jobs"].values()), argv)
        for ad in chosen:
            ad["_remove"] = True
            ad["JobStatus"] = REMOVED
    if not chosen:
        sys.stderr.write("Couldn't find/remove all jobs matching the arguments\n")
        return 1
    for ad in chosen:
        print(f"Job {ad['ClusterId']}.{ad['ProcId']} marked for removal")
    return 0


def main(argv: list[str]) -> int:
    program = Path(argv[0]).name
    try:
        if program in ("condor_submit", "condor_submit_bid"):
            return submit(program, argv[1:])
        if program in ("condor_q", "condor_history"):
            return query(program, argv[1:])
        if program == "condor_rm":
            return remove(argv[1:])
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stderr.write(f"fakecondor: unknown program {program}\n")
    return 2


if __name__ == "__main__":
    if sys.argv[1] == "schedd":
        from fake_schedd import serve

        sys.exit(serve(Path(sys.argv[2]), int(sys.argv[3])))
    sys.exit(main(sys.argv[1:]))
