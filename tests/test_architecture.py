"""The package's import direction, as the README's development section states it.

Every ``import`` in ``hpoptim/`` (module level, inside functions and under
``TYPE_CHECKING`` alike) is read with :mod:`ast` and checked against the layers:
a module imports only from lower layers or from its own sub-package, the
layer-2 packages do not import each other, the loop knows samplers and launchers
only through their bases, and the job side imports nothing of hpoptim but the
contract (``tests/test_contract.py`` runs each job-side module as a job would).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hpoptim"

#: Sub-package or module (dotted, below ``hpoptim``) -> layer. The longest prefix wins.
LAYERS: dict[str, int] = {
    "errors": 0,
    "contract": 0,
    "job": 0,
    "compat": 0,
    "log": 1,
    "messages": 1,
    "sections": 1,
    "shipped": 1,
    "plugins": 1,
    "jobspec": 1,
    "jobstate": 1,
    "space": 1,
    "state": 1,
    # the run config nests the sections the launchers and the checkout declare
    "config": 3,
    "samplers": 2,
    "stopping": 2,
    "launchers": 2,
    "results": 2,
    "source": 2,
    "run": 3,
    "cli": 4,
    "progress": 4,
    "__main__": 4,
}

#: What each job-side module (run inside users' images, or as the local supervisor) and
#: each layer-0 module may import of hpoptim: the contract at most.
JOB_SIDE: dict[str, set[str]] = {
    "hpoptim/errors.py": set(),
    "hpoptim/contract.py": set(),
    "hpoptim/job.py": {"hpoptim.contract"},
    "hpoptim/compat.py": {"hpoptim.contract"},
    "hpoptim/launchers/node.py": {"hpoptim.contract"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``hpoptim...`` module named by an import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hpoptim")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "hpoptim"
        ):
            found.add(str(node.module))
            # ``from hpoptim.launchers import base`` names the sub-module itself
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if _is_module(m)}


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _unit(module: str) -> str:
    """The layer table's key for ``hpoptim.a.b`` (``a``), or ``""`` for ``hpoptim`` itself."""
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    units = {_unit(m) for m in _graph()} - {""}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS and the README"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module, targets in _graph().items():
        src = _unit(module)
        if not src:  # hpoptim/__init__.py re-exports the public API
            continue
        for target in targets:
            dst = _unit(target)
            if dst == src or dst == "":
                continue
            if LAYERS[dst] > LAYERS[src]:
                wrong.append(
                    f"{module} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})"
                )
            elif LAYERS[dst] == LAYERS[src] == 2:
                wrong.append(f"{module} imports {target}: layer-2 packages are independent")
    assert not wrong, "\n".join(wrong)


def test_the_loop_knows_only_the_bases() -> None:
    targets = _graph()["hpoptim.run.loop"]
    concrete = sorted(
        t for t in targets if _unit(t) in ("samplers", "launchers") and not t.endswith(".base")
    )
    assert not concrete, f"hpoptim.run.loop imports {concrete}; it may use only the base classes"


def test_every_layer_0_module_is_checked_as_job_side() -> None:
    layer_0 = {f"hpoptim/{name}.py" for name, layer in LAYERS.items() if layer == 0}
    assert layer_0 <= set(JOB_SIDE)


@pytest.mark.parametrize("module", sorted(JOB_SIDE))
def test_the_job_side_imports_only_the_contract(module: str) -> None:
    assert _imports(ROOT / module) <= JOB_SIDE[module]


def test_wrappers_import_nothing_of_hpoptim() -> None:
    used = {str(p.name): _imports(p) for p in (ROOT / "wrappers").glob("*.py")}
    assert used
    assert not any(used.values()), used


def test_nothing_imports_the_cli() -> None:
    users = sorted(m for m, targets in _graph().items() if "hpoptim.cli" in targets)
    assert users == ["hpoptim.__main__"]


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*stack, node])):
                return cycle
        state[node] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [])):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_checks_see_a_violation(tmp_path: Path) -> None:
    """The scanner finds lazy imports inside functions (how most upward imports hide)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from hpoptim.cli import main\n    import hpoptim.run.loop\n")
    assert _imports(src) == {"hpoptim.cli", "hpoptim.run.loop"}


def test_the_driver_imports_neither_pandas_nor_matplotlib() -> None:
    """report.html is drawn by a child process; the driver's start-up stays light: its
    progress display without a terminal does not even load rich."""
    code = (
        "import io, sys\n"
        "import hpoptim.cli, hpoptim.run.session, hpoptim.run.loop\n"
        "from hpoptim.progress import Progress, ProgressOptions\n"
        "from hpoptim.state.history import Lifecycle, RunHistory\n"
        "p = Progress(ProgressOptions(3, 'loss', True, live=False), io.StringIO())\n"
        "with p.shown():\n"
        "    p(RunHistory(Lifecycle('loss')), {'e': 'finished'})\n"
        "print(sorted(m for m in ('pandas', 'matplotlib', 'rich') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_reading_a_config_imports_no_parser_or_library_it_does_not_need() -> None:
    """``hpoptim.config`` (check, run, resume, status) stays quick to import."""
    code = (
        "import sys\n"
        "import hpoptim.config\n"
        "heavy = ('yaml', 'numpy', 'scipy', 'optuna', 'pandas', 'git', 'matplotlib', 'rich')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


_HEAVY = ("pydantic", "numpy", "pandas", "yaml", "optuna", "git", "matplotlib", "rich")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["status", "{run}"], id="status"),
        pytest.param(["ls", "{results}"], id="ls"),
    ],
)
def test_commands_that_only_read_do_not_import_the_run_stack(
    argv: list[str], tmp_path: Path
) -> None:
    """``--help``, ``status`` and ``ls`` start fast: neither the config models, the
    launchers, the loop nor pandas are imported (a real run's results are read)."""
    run = tmp_path / "results" / "r"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"metric_to_optimize": "loss", "minimize": true}')
    (run / "journal.jsonl").write_text('{"e": "asked", "sid": 0, "params": {"x": 1}, "t": 0}\n')
    words = [w.format(run=run, results=run.parent) for w in argv]
    code = (
        "import sys\n"
        "from hpoptim.cli import main\n"
        f"try:\n    rc = main({words!r})\nexcept SystemExit as exc:\n    rc = exc.code\n"
        "print('exit', rc, file=sys.stderr)\n"
        f"heavy = {_HEAVY!r}\n"
        "names = [m for m in sys.modules if m.split('.')[0] in heavy\n"
        "         or m.startswith(('hpoptim.run', 'hpoptim.launchers', 'hpoptim.config'))]\n"
        "print(sorted({m.split('.')[0] if not m.startswith('hpoptim') else m for m in names}),"
        " file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stderr.strip().splitlines()[-2:] == ["exit 0", "[]"], out.stdout + out.stderr


def _contract_subclasses(base: str) -> list[ast.ClassDef]:
    """Every test class under tests/ that subclasses the contract suite ``base``."""
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(isinstance(b, ast.Name) and b.id == base for b in node.bases)
        ]
    return found


def _assigned(cls: ast.ClassDef, attr: str) -> str | None:
    for node in cls.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == attr for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    return None


def test_every_registry_entry_has_its_contract_suite() -> None:
    """Each built-in sampler, launcher and stopping rule is run through tests/contracts/."""
    from hpoptim.launchers import LAUNCHERS
    from hpoptim.samplers import SAMPLERS
    from hpoptim.stopping import RULES

    samplers = {_assigned(c, "name") for c in _contract_subclasses("SamplerContract")}
    rules = {_assigned(c, "method") for c in _contract_subclasses("StoppingContract")}
    launcher_tests = " ".join(ast.unparse(c) for c in _contract_subclasses("LauncherContract"))
    launchers = {n for n, target in LAUNCHERS.items() if target.split(":")[1] in launcher_tests}
    assert set(SAMPLERS) <= samplers
    assert set(RULES) <= rules
    assert set(LAUNCHERS) == launchers


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists the packages by name: a new sub-package left out of the list
    works from the source tree and is missing after ``pip install .``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    packages = {
        ".".join(path.parent.relative_to(ROOT).parts) for path in PACKAGE.rglob("__init__.py")
    }
    assert packages - listed == set()


def test_checking_a_config_imports_no_sampler_library() -> None:
    """The sampler registry imports only the sampler a config names, and validating its
    settings needs neither Optuna, SciPy nor cmaes (they load when a run builds it)."""
    code = (
        "import sys\n"
        "from hpoptim.config import load_config_dict\n"
        "cfg = load_config_dict({'optimization_procedure_name': 't', 'results_dir': '/tmp/r',\n"
        "    'script_relative_path': 'x.py', 'run_in_working_dir': True,\n"
        "    'metric_to_optimize': 'loss', 'minimize': True, 'number_of_samples': 5,\n"
        "    'n_jobs_per_iteration': 2, 'optimized_params': [\n"
        "        {'param': 'x', 'distribution': 'TruncatedNormal', 'bounds': [0, 1]}]})\n"
        "assert cfg.optimizer_str == 'tpe_cmaes'\n"
        "loaded = [m for m in sys.modules if m.startswith('hpoptim.samplers.')]\n"
        "heavy = ('optuna', 'scipy', 'cmaes', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules), 'cem' in str(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[] False"


# -- journal events are named only by the codec ----------------------------------

#: Modules whose own message protocol also has an ``"e"`` field (the node supervisor's
#: replies to the local launcher: ``started``, ``ended``, ...); their ``"e"`` fields are
#: not journal events, but their calls are still checked.
_OTHER_E_PROTOCOLS = frozenset({"hpoptim.launchers.node", "hpoptim.launchers.local"})
_WRITERS = frozenset({"append", "record", "_append"})


def _kinds_named(node: ast.AST | None) -> list[str]:
    """The event kinds ``node`` names as string constants (alone or in a tuple/list/set)."""
    from hpoptim.state.events import EventKind

    if isinstance(node, ast.Constant) and node.value in {k.value for k in EventKind}:
        return [str(node.value)]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [k for elt in node.elts for k in _kinds_named(elt)]
    return []


def _reads_e(node: ast.AST) -> bool:
    """``node`` is ``x["e"]`` or ``x.get("e")``."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "e"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "e"
    )


def _e_field_kinds(node: ast.AST, e_names: set[str]) -> list[str]:
    """Kinds named in an ``{"e": ...}`` literal or compared with an ``"e"`` field."""
    if isinstance(node, ast.Dict):
        pairs = zip(node.keys, node.values, strict=True)
        return [k for key, v in pairs if isinstance(key, ast.Constant) and key.value == "e"
                for k in _kinds_named(v)]  # fmt: skip
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        if any(_reads_e(o) or (isinstance(o, ast.Name) and o.id in e_names) for o in operands):
            return [k for o in operands for k in _kinds_named(o)]
    return []


def _event_kind_strings(tree: ast.AST, *, check_e_fields: bool = True) -> list[str]:
    """Where ``tree`` names a journal event kind by a string: an argument of
    ``append``/``record``/``_append``, an ``{"e": ...}`` literal, or a comparison with
    an event's ``"e"`` field (read directly or through a name it was assigned to)."""
    e_names = {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and _reads_e(n.value)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _WRITERS:
                found += [
                    f"line {node.lineno}: {name}({k!r})" for k in _kinds_named(ast.Tuple(node.args))
                ]
        if check_e_fields:
            found += [f"line {node.lineno}: 'e' field {k!r}" for k in _e_field_kinds(node, e_names)]  # type: ignore[attr-defined]
    return found


#: Where an event kind's word means something else, by module: a job state
#: ("abandoned"), a setting's or a run's state ("stopped"), a Slurm status reason
#: ("submitted"), the node supervisor's messages ("ended"). Anywhere else any string
#: constant equal to a kind is refused (docstrings aside), so that not even an alias
#: such as ``_ASKED = "asked"`` declares a kind a second time.
_OTHER_MEANINGS: dict[str, frozenset[str]] = {
    "hpoptim.launchers.local": frozenset({"ended"}),
    "hpoptim.launchers.node": frozenset({"ended"}),
    "hpoptim.launchers.slurm": frozenset({"submitted"}),
    "hpoptim.results.html": frozenset({"stopped", "abandoned"}),
    "hpoptim.results.status": frozenset({"stopped"}),
    "hpoptim.state.history": frozenset({"abandoned"}),
    "hpoptim.state.setting": frozenset({"stopped"}),
}


def _kind_constants(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant in ``tree`` equal to an event kind, docstrings aside."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (node.lineno, kind)
        for node in ast.walk(tree)
        if id(node) not in docstrings
        for kind in _kinds_named(node)
        if isinstance(node, ast.Constant)
    ]


def test_no_module_but_the_codec_names_an_event_kind_by_a_string() -> None:
    """Events are named by ``hpoptim.state.events.EventKind`` everywhere else, so a kind
    is declared once and a reader cannot drift from the writer."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module == "hpoptim.state.events":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        check_e = module not in _OTHER_E_PROTOCOLS
        problems += [f"{module}: {p}" for p in _event_kind_strings(tree, check_e_fields=check_e)]
        allowed = _OTHER_MEANINGS.get(module, frozenset())
        problems += [
            f"{module}: line {line}: {kind!r}"
            for line, kind in _kind_constants(tree)
            if kind not in allowed
        ]
    assert not problems, "event kinds named by a string:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        'self.record("asked", sid=1, params={})',
        'journal.append("ended", job="j")',
        '_append(layout, "driver_started", pid=1)',
        'history.apply({"e": "asked", "sid": 0})',
        'if event["e"] == "finished": pass',
        'if ev.get("e") != "judged": pass',
        'kind = event["e"]\nif kind in ("run_started", "other"): pass',
    ],
)
def test_the_event_check_sees_a_kind_named_by_a_string(source: str) -> None:
    assert _event_kind_strings(ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        'rec.state = "abandoned"',
        'if status == "stopped": pass',
        "self.record(EventKind.ASKED, sid=1, params={})",
        'if event["e"] == EventKind.FINISHED: pass',
    ],
)
def test_the_event_check_leaves_other_strings_alone(source: str) -> None:
    assert not _event_kind_strings(ast.parse(source))


def test_another_protocols_e_field_is_left_alone_but_not_its_journal_writes() -> None:
    reply = ast.parse('reply({"e": "ended", "job": "j"})\nif msg.get("e") == "ended": pass')
    assert not _event_kind_strings(reply, check_e_fields=False)
    assert _event_kind_strings(ast.parse('record("ended", job="j")'), check_e_fields=False)


def test_any_other_string_equal_to_a_kind_is_seen_but_docstrings() -> None:
    tree = ast.parse('"""Folds asked events."""\n_ASKED = "asked"\nx = {"stopped": 1}\n')
    assert _kind_constants(tree) == [(2, "asked"), (3, "stopped")]
