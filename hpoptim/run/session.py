"""One run's session: results dir, lock, fresh-vs-resume, checkout, sampler, loop, reports.

Part of the command-line layer (layer 4, beside ``cli``). The run's parts built from
config sections (checks, launcher, container options, git source, job command) come
from :mod:`hpoptim.run.assembly`. It never prints or exits; ``cli`` does.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpoptim import __version__
from hpoptim.config import RunConfig, load_config, load_config_data, load_config_dict
from hpoptim.errors import (
    CheckoutError,
    ConfigError,
    ConfigProblem,
    HpoptimError,
    RunFailedError,
    RunStoppedError,
    StorageError,
)
from hpoptim.log import add_log_file, get_logger, remove_log_file
from hpoptim.results.drawing import HTML_NAME, HtmlReporter
from hpoptim.results.markdown import summary
from hpoptim.results.ranking import check_ranking
from hpoptim.results.report import Reporter
from hpoptim.run.assembly import (
    config_checks,
    job_env,
    make_launcher,
    make_sampler_for,
    script_command,
    start_checks,
    stop_leftover_jobs,
)
from hpoptim.run.loop import Optimization
from hpoptim.run.outcomes import failed_run_reason
from hpoptim.run.plan import EventHook, JobTemplate, LoopSettings, RunPlan
from hpoptim.run.temporaries import remove_stale_temporaries
from hpoptim.shipped import link_job_side
from hpoptim.state.events import JOURNAL_FORMAT, EventKind
from hpoptim.state.history import (
    JournalRepair,
    Lifecycle,
    RunHistory,
    SettingRecord,
    load_events,
    load_history,
    repair_journal,
)
from hpoptim.state.setting import SettingState
from hpoptim.state.storage import Journal, ResultsLayout, RunLock, write_json_atomic

if TYPE_CHECKING:
    from hpoptim.source.git_source import GitSource
    from hpoptim.source.repo import CheckoutInfo

logger = get_logger(__name__)
_RUN_ENDS = (EventKind.FINISHED, EventKind.RETRY_FAILED)
"""Events after which a journal says whether the run has nothing left to do."""


@dataclass
class Session:
    """A run ready to start or continue."""

    cfg: RunConfig
    layout: ResultsLayout
    events: list[dict[str, Any]]
    lock: RunLock | None
    created_root: bool = False
    read_only: bool = False
    """Another driver holds the run: report from the journal, write nothing."""
    repaired: JournalRepair | None = None
    """What ``hpoptim report --repair`` did to the journal."""

    @property
    def already_finished(self) -> bool:
        ends = [e["e"] for e in self.events if e["e"] in _RUN_ENDS]
        return bool(ends) and ends[-1] == EventKind.FINISHED

    def retry_failed(self) -> list[int]:
        """Journal that the failed settings run their failed reruns again (``hpoptim
        resume --retry-failed``, after fixing their cause); return their ids.

        Only the failed reruns run again, in new attempts, from the iteration they
        failed in; nothing else is repeated, and the sampler is not asked again.
        """
        history = RunHistory(self.lifecycle())
        history.replay(self.events)
        failed = [s.setting_id for s in history.settings.values() if s.state is SettingState.FAILED]
        if failed:
            self.events.append(
                _append(self.layout, EventKind.RETRY_FAILED, sids=failed, t=time.time())
            )
        return failed

    def close(self) -> None:
        """Release the results directory's lock (also done at the end of :meth:`run`)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def reporter(self) -> Reporter:
        c = self.cfg
        return Reporter(
            self.layout,
            c.metric_to_optimize,
            minimize=c.lower_is_better,
            n_best=c.n_best_jobs_to_keep,
        )

    def repair_summary(self) -> str:
        """What ``--repair`` did, in a sentence or two ("" if it was not asked for)."""
        r = self.repaired
        if r is None:
            return ""
        if not r.n_dropped:
            return f"the journal is intact ({r.n_kept} event(s)); nothing to repair"
        return (
            f"repaired the journal: kept its first {r.n_kept} event(s) and dropped "
            f"{r.n_dropped} line(s) from {r.problem}; the damaged journal is kept as "
            f"{r.backup}. Continue with 'hpoptim resume {self.layout.root}': the work "
            "recorded only in the dropped lines runs again"
        )

    def lifecycle(self) -> Lifecycle:
        return _lifecycle(self.cfg)

    def history(self) -> RunHistory:
        """The run's history from the journal as it is now (a stopped driver has added
        events since this session was opened)."""
        return load_history(self.layout.journal, self.lifecycle())[0]

    def describe(self) -> str:
        """What ``hpoptim check`` prints; it resolves the git ref, so a wrong branch,
        tag, commit or URL fails here instead of at the start of the run.

        Raises:
            CheckoutError: The repository cannot be read or holds no such ref.
        """
        c = self.cfg
        names = ", ".join(c.search_space().names)
        text = (
            f"config OK: {c.number_of_samples} setting(s) x {c.n_reruns} rerun(s) of "
            f"{c.script_relative_path} with {c.optimizer_str} over {names}; "
            f"launcher {c.launcher}; results in {self.layout.root}"
        )
        source = None if c.run_in_working_dir else c.git_params
        if source is None:
            return text
        from hpoptim.run.learning import uses_templates
        from hpoptim.source.checkout import missing_script, resolve_ref

        sha = resolve_ref(source)
        if why := missing_script(source, sha, c.script_relative_path):
            raise CheckoutError(why, source.url, source.ref)
        if uses_templates(c.script_relative_path, c.fixed_params):
            sha = self._check_templates_at(source, sha)
        found = f"commit {sha}" if sha else "resolved when cloned"
        return f"{text}\ngit OK: {source.describe_ref()} of {source.url}: {found}"

    def _check_templates_at(self, source: GitSource, sha: str | None) -> str:
        """Check the config templates in the repository's files at the commit, as the
        run does in its checkout, without making that checkout; return the commit.

        Raises:
            ConfigError: The templates' problems, paths shown as ``URL@COMMIT/...``.
        """
        from hpoptim.run.learning import check_learning
        from hpoptim.source.checkout import files_at_commit

        with files_at_commit(source, sha) as (root, sha):
            problems = check_learning(self.cfg, root)
            where = f"{source.url}@{sha[:12]}"
            problems = [
                ConfigProblem(p.path, p.message.replace(str(root), where)) for p in problems
            ]
        if problems:
            raise ConfigError(problems)
        return sha

    def write_reports(self, quiet: bool = False, ranking: tuple[str, bool] | None = None) -> str:
        """Rewrite the CSVs, best params, best jobs and report; return the summary.

        A read-only session (a driver is running) writes nothing: the driver keeps
        those files up to date.

        Args:
            quiet: Return "" instead of the summary.
            ranking: ``(metric, minimize)`` to rank the settings by instead of the
                config's ``metric_to_optimize`` and ``minimize`` (``hpoptim report
                --metric``, e.g. for a grid search that named no metric).

        Raises:
            ConfigError: No setting reported the ``ranking`` metric.
        """
        history = self.history()
        reporter = self.reporter
        if ranking is not None:
            check_ranking(history, ranking[0])
            reporter = Reporter(
                self.layout, ranking[0], minimize=ranking[1], n_best=self.cfg.n_best_jobs_to_keep
            )
        if self.read_only:
            return (
                f"{summary(history, reporter)}\n(a driver is running this run and keeps its "
                "result files up to date; nothing was rewritten)"
            )
        remove_stale_temporaries(self.layout, history)
        reporter.write_all(history)
        from hpoptim.results.html import write_html_report  # pandas, matplotlib: only here

        write_html_report(self.layout.root, ranking)
        return "" if quiet else summary(history, reporter)

    def run(self, stop: threading.Event, on_event: EventHook | None = None) -> str:
        """Run or continue the optimisation; return the end-of-run summary.

        Args:
            stop: Set to stop submitting, cancel the running jobs and return.
            on_event: Told of every event the loop journals (progress display).
        """
        try:
            return self._run(stop, on_event)
        except (CheckoutError, ConfigError):
            self._discard_if_unstarted()
            raise
        finally:
            self.close()

    def _discard_if_unstarted(self) -> None:
        """Remove a results dir this call created when the run failed before its journal."""
        if not self.created_root or self.layout.journal.exists():
            return
        remove_log_file(self.layout.log_file)
        self.close()
        shutil.rmtree(self.layout.root, ignore_errors=True)

    def _run(self, stop: threading.Event, on_event: EventHook | None) -> str:
        cfg, layout = self.cfg, self.layout
        add_log_file(layout.log_file)
        started = next((e for e in self.events if e["e"] == EventKind.RUN_STARTED), None)
        info, seed = self._prepare(started)
        checkout = info.to_dict()
        plan = self.plan(checkout, seed)
        link_job_side(layout.root)  # what plan put on the jobs' PYTHONPATH
        sampler = make_sampler_for(cfg, seed)
        reporter = self.reporter
        html = HtmlReporter(layout.root)

        def on_setting_finished(history: RunHistory, setting: SettingRecord) -> None:
            reporter.on_setting_finished(history, setting)
            html.on_setting_finished(history, setting)

        launcher = make_launcher(cfg, layout)
        loop: Optimization | None = None
        try:
            loop = Optimization(plan, sampler, launcher, layout, on_setting_finished, on_event)
            loop.resume_from(self.events)
            remove_stale_temporaries(layout, loop.history)
            if started is None:
                loop.history.apply(self._journal_start(info, seed))
            else:
                _append(layout, EventKind.DRIVER_STARTED, pid=_pid(), host=_host(), t=time.time())
            try:
                history = loop.run(stop)
            except RunFailedError as failed:
                reporter.write_all(loop.history)
                html.finish()
                failed.summary = summary(loop.history, reporter)
                raise
        except KeyboardInterrupt:
            # a second Ctrl-C aborts at once: no cancel grace in close(); the local
            # launcher's jobs are killed as the process exits, Slurm's are left queued
            raise
        except BaseException as exc:
            launcher.close()
            if not isinstance(exc, RunStoppedError) and loop is not None:  # cli writes those
                _write_after_failure(reporter, loop.history)
            raise
        launcher.close()
        remove_stale_temporaries(layout, history, root=False)  # the jobs that ended meanwhile
        reporter.write_all(history)
        html.finish()
        drawn = f"plots: {layout.root / HTML_NAME} (being drawn in the background)"
        return f"{summary(history, reporter)}\n{drawn}"

    def failure(self) -> str:
        """Why this run, finished when the session was opened, counts as failed ("" if
        a setting succeeded); from the events read then, not the journal read again."""
        history = RunHistory(self.lifecycle())
        history.replay(self.events)
        return failed_run_reason(history)

    def prepare(self) -> tuple[dict[str, Any], int]:
        """The checkout (cloned if the config names a repository) and the seed a fresh
        run starts with, without journaling anything (``--generate-only``)."""
        info, seed = self._prepare(None)
        return info.to_dict(), seed

    def _prepare(self, started: dict[str, Any] | None) -> tuple[CheckoutInfo, int]:
        from hpoptim.run.provenance import excluded_paths, warn_if_changed
        from hpoptim.source.checkout import prepare_checkout

        cfg = self.cfg
        pinned = None if started is None else (started.get("checkout") or {}).get("commit")
        info = prepare_checkout(
            cfg.git_params,
            work_dir=_work_dir(started),
            clone_root=self.layout.checkout_dir,
            run_in_working_dir=cfg.run_in_working_dir,
            script_relative_path=cfg.script_relative_path,
            pinned_commit=pinned if cfg.git_params is not None else None,
            exclude=excluded_paths(self.layout),
        )
        if started is not None:
            warn_if_changed(info, started, self.layout)
            seed = int(started["seed"])
        else:
            seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
        return info, seed

    def _journal_start(self, info: CheckoutInfo, seed: int) -> dict[str, Any]:
        from hpoptim.run.provenance import record_provenance

        provenance = record_provenance(info, self.cfg, self.layout)
        return _append(
            self.layout,
            EventKind.RUN_STARTED,
            journal_format=JOURNAL_FORMAT,
            seed=seed,
            checkout=info.to_dict(),
            provenance=provenance.to_dict(),
            image_sha256=provenance.image_sha256,
            hpoptim_version=__version__,
            python=provenance.driver_python,
            pid=_pid(),
            host=_host(),
            t=time.time(),
        )

    def plan(self, checkout: dict[str, Any], seed: int, *, check: bool = True) -> RunPlan:
        """The loop's plan for a checkout at ``checkout["root"]``; ``check=False`` (a
        preview before the checkout exists) skips the checks that need its files."""
        cfg = self.cfg
        root = Path(checkout["root"])
        if check and not cfg.run_in_working_dir:
            from hpoptim.run.learning import check_learning

            if found := check_learning(cfg, root):
                raise ConfigError(found)
        command = script_command(cfg, root) if check else unchecked_command(cfg, root)
        template = JobTemplate(
            command=command,
            cwd=root,
            fixed_params=cfg.fixed_params,
            env=job_env(cfg, self.layout.root),
            resources=cfg.resources,
            container=cfg.singularity,
            binds=(root,),
        )
        settings = LoopSettings.from_config(cfg, seed)
        return RunPlan(settings, self.lifecycle(), template, cfg.early_stopping)


def unchecked_command(cfg: RunConfig, root: Path) -> tuple[str, ...]:
    """The job command before the checkout exists (its script cannot be looked at yet)."""
    script = root / cfg.script_relative_path
    if cfg.interpreter is not None:
        return (*cfg.interpreter, str(script))
    return (sys.executable, str(script)) if script.suffix == ".py" else (str(script),)


def _work_dir(started: dict[str, Any] | None) -> Path:
    """Where a run without checkout runs: the cwd of its start, also when resumed elsewhere."""
    root = None if started is None else (started.get("checkout") or {}).get("root")
    return Path(root) if root else Path.cwd()


def _pid() -> int:
    return os.getpid()


def _host() -> str:
    return socket.gethostname()


def _append(layout: ResultsLayout, event: EventKind, **fields: Any) -> dict[str, Any]:
    journal = Journal(layout.journal)
    journal.open()
    try:
        return journal.append(event, **fields)
    finally:
        journal.close()


def open_session(
    *,
    config: Path | Mapping[str, Any] | None = None,
    overrides: list[str] | None = None,
    results: Path | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    for_report: bool = False,
    repair: bool = False,
) -> Session:
    """Load and validate the config, settle fresh-vs-resume, lock the results dir."""
    if results is not None:
        layout = ResultsLayout(results.resolve())
        if not layout.config_file.exists():
            raise StorageError(f"{layout.root} holds no hpoptim run (no config.json)", layout.root)
        cfg = load_config_dict(
            _saved_config(layout), check=config_checks, source=layout.config_file
        )
    else:
        assert config is not None
        if isinstance(config, Mapping):
            cfg = load_config_data(config, overrides or [], check=start_checks)
        else:
            cfg = load_config(config, overrides or [], check=start_checks)
        layout = ResultsLayout(cfg.results_dir / cfg.optimization_procedure_name)
    if dry_run:
        return Session(cfg, layout, _events(cfg, layout), None)
    if for_report:
        return _report_session(cfg, layout, repair)
    created = not layout.root.exists()
    lock = RunLock(layout.lock_file)
    lock.acquire()
    try:
        if results is None:
            _settle_existing(cfg, layout, overwrite, lock)
        if not layout.journal.exists():
            # owner-only: it holds the jobs' environment values, often secrets
            write_json_atomic(layout.config_file, cfg.to_dict(), private=True)
        return Session(cfg, layout, _events(cfg, layout), lock, created_root=created)
    except BaseException:
        lock.release()
        raise


def _write_after_failure(reporter: Reporter, history: RunHistory) -> None:
    """Bring the CSVs and report up to date on a run that ends in an error (a launcher
    that gave up, a full disk): at worst they stay as they were."""
    try:
        reporter.write_all(history)
    except (OSError, HpoptimError) as err:
        logger.warning("could not rewrite the result files: %s", err)


def _events(cfg: RunConfig, layout: ResultsLayout) -> list[dict[str, Any]]:
    return load_events(layout.journal, _lifecycle(cfg))


def _lifecycle(c: RunConfig) -> Lifecycle:
    return Lifecycle(
        c.metric_to_optimize,
        c.n_reruns,
        c.max_attempts,
        c.training_iterations,
        judge_iterations=c.early_stopping.enabled,
    )


def _report_session(cfg: RunConfig, layout: ResultsLayout, repair: bool) -> Session:
    """A session for ``hpoptim report``: it holds the lock while rewriting the files, or
    is read-only when a driver holds it (two writers would race over ``best_jobs/``)."""
    lock = RunLock(layout.lock_file)
    try:
        lock.acquire()
    except StorageError:
        if repair:
            raise
        return Session(cfg, layout, _events(cfg, layout), None, read_only=True)
    try:
        session = Session(cfg, layout, [], lock)
        if repair:
            session.repaired = repair_journal(layout.journal, _lifecycle(cfg))
        session.events = _events(cfg, layout)
        return session
    except BaseException:
        lock.release()
        raise


def _saved_config(layout: ResultsLayout) -> Any:
    """The run's saved ``config.json`` as parsed JSON.

    Raises:
        StorageError: The file cannot be read or is not JSON.
    """
    try:
        return json.loads(layout.config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"cannot read the saved config {layout.config_file}: {exc}", layout.config_file
        ) from None


def _in_todays_keys(saved: Any) -> Any:
    """A saved config as today's version saves it (a run started by an earlier version
    holds old key names); as it is if it no longer loads."""
    try:
        return json.loads(json.dumps(load_config_dict(saved).to_dict()))
    except ConfigError:
        return saved


def _settle_existing(cfg: RunConfig, layout: ResultsLayout, overwrite: bool, lock: RunLock) -> None:
    if not layout.journal.exists():
        return
    if overwrite:
        _move_aside(layout, lock)
        return
    saved = _in_todays_keys(_saved_config(layout))
    if saved != json.loads(json.dumps(cfg.to_dict())):
        raise StorageError(
            f"{layout.root} already holds a run with a different config; continue it with "
            f"'hpoptim resume {layout.root}', pass --overwrite to start afresh (the old run is "
            "moved aside), or choose another optimization_procedure_name",
            layout.root,
        )
    logger.info("continuing the run in %s", layout.root)


def _move_aside(layout: ResultsLayout, lock: RunLock) -> None:
    """``--overwrite``: stop the old run's jobs, then move the run to a new backup name.

    The lock is held throughout (it moves with the directory and is renewed on the new
    one), so no ``resume`` can start in between; jobs of the old run still queued or
    running are stopped first, as they would write into the new run's directories.
    """
    stop_leftover_jobs(layout)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        backup = layout.root.with_name(f"{layout.root.name}.old-{stamp}{f'-{n}' if n else ''}")
        if not backup.exists():
            break
    os.rename(layout.root, backup)  # same parent: atomic, and never into an existing dir
    lock.renew()
    logger.warning("--overwrite: moved the previous run to %s", backup)
