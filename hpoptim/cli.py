"""Command line: ``hpoptim [run] CONFIG [OVERRIDE ...]``, ``resume``, ``report``, ``check``,
``status``, ``ls``, ``rerun``, ``schema``.

The only module that prints, exits, handles signals or configures logging, and
the only one that picks concrete samplers and launchers.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from hpoptim import __version__, log
from hpoptim.errors import (
    CheckoutError,
    ConfigError,
    HpoptimError,
    OverrideError,
    RerunRefusedError,
    RunFailedError,
    RunStoppedError,
    StorageError,
)

if TYPE_CHECKING:
    from hpoptim.progress import Progress
    from hpoptim.run.session import Session

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143
COMMANDS = ("run", "resume", "report", "check", "migrate", "status", "ls", "schema", "rerun")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpoptim",
        description="Hyperparameter optimisation of training jobs, locally or on Slurm.",
        epilog="Without a sub-command, 'hpoptim CONFIG ...' means 'hpoptim run CONFIG ...'.",
    )
    parser.add_argument("--version", action="version", version=f"hpoptim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or continue) an optimisation")
    check = sub.add_parser("check", help="validate a config (and its checkout) without launching")
    for p in (run, check):
        p.add_argument("config", type=Path, help="config file (.json, .yaml, .yml or .toml)")
        p.add_argument("overrides", nargs="*", help="dotted.key=value, +new.key=value, ~key")
        # checked with the config, which lists the registered launchers: building the
        # parser must not import them (status, ls and --help start fast)
        p.add_argument("--launcher", metavar="NAME", help="override 'launcher' (local, slurm, ...)")
    check.add_argument(
        "--show",
        type=int,
        metavar="N",
        default=0,
        help="also show the first N settings the sampler proposes and the first job's "
        "command, working directory and container argv",
    )
    run.add_argument(
        "--generate-only",
        action="store_true",
        help="write every setting's job directories (params, patched config files) and "
        "RESULTS/NAME/generated/jobs.jsonl with each job's command, without running anything",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh even if the results directory holds a run (the old one is "
        "moved aside, never deleted)",
    )
    migrate = sub.add_parser(
        "migrate", help="print a cluster_utils/LTTFS config as native YAML, translations commented"
    )
    migrate.add_argument("config", type=Path, help="cluster_utils config (.json, .yaml, .toml)")
    migrate.add_argument("overrides", nargs="*", help="key=value as the file writes its keys")
    resume = sub.add_parser("resume", help="continue a run from its results directory")
    resume.add_argument("results", type=Path, help="RESULTS_DIR/optimization_procedure_name")
    resume.add_argument(
        "--retry-failed",
        action="store_true",
        help="after fixing their cause, run the failed settings' failed jobs again "
        "(journaled; nothing else is repeated)",
    )
    report = sub.add_parser("report", help="rewrite CSVs, best params and report from the journal")
    report.add_argument("results", type=Path, help="RESULTS_DIR/optimization_procedure_name")
    report.add_argument(
        "--html-only",
        action="store_true",
        help="only redraw report.html and plots/ (safe while a driver runs the run)",
    )
    report.add_argument(
        "--metric",
        metavar="NAME",
        help="rank the settings by this metric (any the jobs reported) instead of the "
        "config's metric_to_optimize, e.g. for a grid search that named none",
    )
    report.add_argument(
        "--maximize", action="store_true", help="with --metric: higher values are better"
    )
    report.add_argument(
        "--repair",
        action="store_true",
        help="if a journal line is damaged, keep the events before it (the damaged journal "
        "is moved aside) so that the run can be reported and resumed",
    )
    status = sub.add_parser("status", help="where a run stands (read-only, also while it runs)")
    status.add_argument("results", type=Path, help="RESULTS_DIR/optimization_procedure_name")
    ls = sub.add_parser("ls", help="list the runs under a results directory")
    ls.add_argument(
        "results_dir", type=Path, nargs="?", default=Path("results"), help="default: results"
    )
    rerun = sub.add_parser(
        "rerun",
        help="run one job again from its recorded provenance (commit + patch, image, "
        "params, seed) into RUN/reruns/, locally, and compare its metrics",
    )
    rerun.add_argument("results", type=Path, help="RESULTS_DIR/optimization_procedure_name")
    rerun.add_argument("job", help="the job's id, as in jobs.csv (e.g. 3_0.0-0)")
    rerun.add_argument(
        "--tolerance",
        type=_tolerance,
        default=1e-9,
        help="largest relative or absolute difference of a metric that still matches "
        "(default: 1e-9)",
    )
    schema = sub.add_parser(
        "schema",
        help="print the config's JSON Schema (for editors: VS Code YAML, PyCharm)",
    )
    for p in (run, check, resume, report, migrate, status, ls, rerun, schema):
        p.add_argument("-v", "--verbose", action="count", default=0, help="more output")
        p.add_argument("-q", "--quiet", action="count", default=0, help="less output")
        p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


#: Options that take a value as the next argument (``--launcher slurm``).
_VALUED = ("--launcher", "--show", "--metric")


def _normalise_argv(argv: Sequence[str]) -> list[str]:
    """``hpoptim [OPTIONS] CONFIG ...`` as ``hpoptim run [OPTIONS] CONFIG ...``, and
    options written before a sub-command after it (``hpoptim -q report RUN``)."""
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        i += 2 if args[i] in _VALUED else 1
    if (
        i >= len(args)
        or args[i] == "--"
        or any(a in ("-h", "--help", "--version") for a in args[:i])
    ):
        return args
    if args[i] not in COMMANDS:
        return ["run", *args]
    return [args[i], *args[:i], *args[i + 1 :]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(_normalise_argv(raw))
    debug = args.debug or os.environ.get("HPOPTIM_FULL_ERROR") == "1"
    log.configure(args.verbose - args.quiet)
    try:
        with _signals_to_stop() as stop:
            return _dispatch(args, stop)
    except (ConfigError, OverrideError, CheckoutError, RerunRefusedError) as exc:
        return _fail(exc, EXIT_USAGE, debug, _naming_the_file(exc, args))
    except RunStoppedError as exc:
        return _fail(exc, _stop_code(exc), debug)
    except StorageError as exc:
        return _fail(exc, EXIT_USAGE, debug)
    except RunFailedError as exc:
        if exc.summary:
            print(exc.summary)
        return _fail(exc, EXIT_RUNTIME, debug)
    except HpoptimError as exc:
        return _fail(exc, EXIT_RUNTIME, debug)
    except OSError as exc:
        message, code = _os_error(exc)
        return _fail(exc, code, debug, message)
    except KeyboardInterrupt:
        print("hpoptim: interrupted", file=sys.stderr)
        return EXIT_SIGINT


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


_KEY_FIRST = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _naming_the_file(exc: HpoptimError, args: argparse.Namespace) -> str:
    """The message of a config error found after loading (at the checkout, at the commit)
    with the config file it is about; "" to keep the message as it is."""
    config = getattr(args, "config", None)
    results = getattr(args, "results", None)
    path = config if config is not None else (results / "config.json" if results else None)
    if path is None:
        return ""
    if isinstance(exc, ConfigError) and exc.source is None:
        if any(p.path.startswith("-") for p in exc.problems):  # about an option, not the file
            return ""
        return str(ConfigError(exc.problems, source=path))
    if isinstance(exc, CheckoutError) and _KEY_FIRST.match(str(exc)):
        return f"{path}: {exc}"
    return ""


def _fail(exc: BaseException, code: int, debug: bool, message: str = "") -> int:
    if debug:
        traceback.print_exception(exc)
    print(f"hpoptim: error: {message or exc}", file=sys.stderr)
    return code


_RESOURCE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
_FIXES = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space or raise the quota",
    errno.EROFS: "choose a results_dir on a writable file system",
    errno.EACCES: "fix the permissions or choose another results_dir",
    errno.EPERM: "fix the permissions or choose another results_dir",
    errno.ENAMETOOLONG: "a file name may have at most 255 bytes: shorten "
    "optimization_procedure_name or the names in results_dir",
    errno.ENOTDIR: "a part of that path is a file: choose another results_dir",
    errno.EEXIST: "a part of that path is a file: choose another results_dir",
}


def _os_error(exc: OSError) -> tuple[str, int]:
    """One line naming the path, what is wrong and what to do; and the exit code.

    A full disk or another lack of resources is a runtime failure (1); a path that
    cannot be used (permissions, read-only, too long, a file where a directory must
    be) is a usage error (2). Where the path lies in a run that has a journal, the
    line says how to continue it.
    """
    path = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or str(exc)
    fix = _FIXES.get(exc.errno or 0, "fix the cause")
    line = f"cannot use {path}: {what}; {fix}"
    if (root := _run_root(exc.filename)) is not None:
        line += f", then continue with: hpoptim resume {root}"
    return line, EXIT_RUNTIME if exc.errno in _RESOURCE_ERRORS else EXIT_USAGE


def _run_root(filename: object) -> Path | None:
    """The results directory holding ``filename`` if it holds a journal, else None."""
    if not isinstance(filename, (str, os.PathLike)):
        return None
    path = Path(os.fsdecode(filename))
    for parent in (path, *path.parents):
        try:
            if (parent / "journal.jsonl").is_file():
                return parent
        except OSError:
            continue
    return None


def _stop_code(exc: RunStoppedError) -> int:
    if exc.reason.startswith("interrupted by SIGTERM"):
        return EXIT_SIGTERM
    if exc.reason.startswith("interrupted"):
        return EXIT_SIGINT
    return EXIT_RUNTIME


class _Stop(threading.Event):
    signame: str = ""


@contextmanager
def _signals_to_stop() -> Iterator[_Stop]:
    """SIGINT/SIGTERM set the returned event; a second SIGINT raises KeyboardInterrupt."""
    stop = _Stop()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signame = signal.Signals(signum).name
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _without_session(args: argparse.Namespace, stop: _Stop) -> int | None:
    """Run the commands that open no session; ``None`` for the others."""
    if args.command == "migrate":
        from hpoptim.config.migrate import migrate_text

        print(migrate_text(args.config, args.overrides), end="")
        return EXIT_OK
    if args.command in ("status", "ls"):
        return _show_status(args)
    if args.command == "rerun":
        return _rerun(args, stop)
    return None


def _dispatch(args: argparse.Namespace, stop: _Stop) -> int:
    if (code := _without_session(args, stop)) is not None:
        return code
    if args.command == "schema":
        from hpoptim.config import json_schema

        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    from hpoptim.run.session import open_session

    if args.command == "report":
        return _report(args)
    if args.command == "resume":
        session = open_session(results=args.results)
        if args.retry_failed:
            _retry_failed(session)
    else:
        overrides = list(args.overrides)
        if args.launcher:
            overrides.append(f"launcher={args.launcher!r}")
        session = open_session(
            config=args.config,
            overrides=overrides,
            overwrite=getattr(args, "overwrite", False),
            dry_run=args.command == "check",
        )
    for note in session.cfg.notes:
        print(f"hpoptim: note: {note}", file=sys.stderr)
    if getattr(args, "generate_only", False):
        return _generate(session)
    if args.command == "check":
        print(session.describe())
        if args.show > 0:
            from hpoptim.run.preview import preview

            print(preview(session, args.show))
        return EXIT_OK
    return _run(session, stop, args.verbose - args.quiet)


def _generate(session: Session) -> int:
    from hpoptim.run.generate import generate

    try:
        print(generate(session))
    finally:
        session.close()
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    if args.html_only:
        from hpoptim.results.html import write_html_report

        print(write_html_report(args.results))
        return EXIT_OK
    from hpoptim.run.session import open_session

    session = open_session(results=args.results, for_report=True, repair=args.repair)
    try:
        if args.repair:
            print(session.repair_summary())
        ranking = None if args.metric is None else (args.metric, not args.maximize)
        print(session.write_reports(ranking=ranking))
    finally:
        session.close()
    return EXIT_OK


def _retry_failed(session: Session) -> None:
    try:
        retried = session.retry_failed()
    except BaseException:
        session.close()
        raise
    if retried:
        ids = ", ".join(map(str, retried))
        print(f"hpoptim: retrying the failed jobs of setting(s) {ids}", file=sys.stderr)
    else:
        print("hpoptim: no setting failed; nothing to retry", file=sys.stderr)


def _show_status(args: argparse.Namespace) -> int:
    from hpoptim.results.status import (
        DamagedRun,
        list_runs,
        render_runs,
        render_status,
        run_status,
    )

    if args.command == "status":
        print(render_status(run_status(args.results)))
        return EXIT_OK
    if not args.results_dir.is_dir():
        raise StorageError(f"{args.results_dir} is not a directory", args.results_dir)
    runs = list_runs(args.results_dir)
    print(render_runs(runs))
    damaged = [r for r in runs if isinstance(r, DamagedRun)]
    for run in damaged:
        print(f"hpoptim: error: cannot read the run {run.root}: {run.problem}", file=sys.stderr)
    return EXIT_RUNTIME if damaged else EXIT_OK


def _rerun(args: argparse.Namespace, stop: _Stop) -> int:
    from hpoptim.run.rerun import rerun_job

    outcome = rerun_job(args.results, args.job, tolerance=args.tolerance, stop=stop)
    print(f"rerun of job {outcome.job_id} in {outcome.directory}")
    print(f"  {outcome.provenance.code_line()}")
    names = sorted(set(outcome.original) | set(outcome.metrics))
    width = max([len(n) for n in names] + [6])
    print(f"  {'metric'.ljust(width)}  {'original':>24}  {'rerun':>24}")
    for name in names:
        a, b = outcome.original.get(name), outcome.metrics.get(name)
        print(f"  {name.ljust(width)}  {a!r:>24}  {b!r:>24}")
    for note in outcome.notes:
        print(f"  note: {note}")
    if outcome.matched:
        print(f"the rerun reproduces job {outcome.job_id} (metrics within {args.tolerance:g})")
        return EXIT_OK
    if outcome.state != outcome.original_state:
        why = f": {outcome.reason}" if outcome.reason else ""
        print(
            f"hpoptim: error: the rerun of job {outcome.job_id} ended {outcome.state}{why}, "
            f"the original {outcome.original_state}; see {outcome.directory / 'job'}",
            file=sys.stderr,
        )
    for line in outcome.differences:
        print(f"hpoptim: error: metrics differ: {line}", file=sys.stderr)
    return EXIT_RUNTIME


def _progress(session: Session, verbosity: int) -> Progress | None:
    """The console display of the run (none with ``-q``)."""
    if verbosity < 0:
        return None
    from hpoptim.progress import Progress, ProgressOptions

    cfg = session.cfg
    options = ProgressOptions(
        n_samples=cfg.number_of_samples,
        metric=cfg.metric_to_optimize,
        minimize=cfg.lower_is_better,
        live=sys.stderr.isatty(),
    )
    return Progress(options, sys.stderr)


def _run(session: Session, stop: _Stop, verbosity: int = 0) -> int:
    if session.already_finished:
        try:
            print(f"this run is already complete; nothing to do\n{session.write_reports()}")
            failure = session.failure()
        finally:
            session.close()
        if failure:
            print(f"hpoptim: error: {failure}", file=sys.stderr)
            return EXIT_RUNTIME
        return EXIT_OK
    progress = _progress(session, verbosity)
    try:
        if progress is None:
            text = session.run(stop)
        else:
            with progress.shown():
                text = session.run(stop, progress)
    except RunStoppedError as stopped:
        exc = RunStoppedError(f"interrupted by {stop.signame}") if stop.is_set() else stopped
        session.write_reports(quiet=True)
        # the one line saying why (main would print the reason again)
        print(
            f"hpoptim: stopped ({exc.reason}); continue with: hpoptim resume {session.layout.root}",
            file=sys.stderr,
        )
        return _stop_code(exc)
    print(text)
    return EXIT_OK
