"""The README's config reference is generated from the schema and must not go stale."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from hpoptim.config import load_config_dict, reference_markdown
from hpoptim.config.schema import sections
from hpoptim.stopping import StoppingSettings
from tests.config.conftest import minimal

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- config-reference -->\n"
UPDATE = "HPOPTIM_UPDATE_README"
ROW = re.compile(r"^\| `(\w+)` \| (.*?) \| (.*?) \| (yes|no) \| (.*) \|$")


def test_readme_section_matches_the_schema() -> None:
    head, marker, section = README.read_text(encoding="utf-8").partition(MARKER)
    assert marker, f"README.md lost its {MARKER.strip()} line"
    expected = "\n" + reference_markdown()
    if os.environ.get(UPDATE) == "1":
        README.write_text(head + MARKER + expected, encoding="utf-8")
        section = expected
    assert section == expected, (
        f"README.md's config reference is out of date; regenerate it with "
        f"{UPDATE}=1 python -m pytest {Path(__file__).relative_to(README.parent)}"
    )


def _tables() -> dict[str, dict[str, tuple[str, str, str, str]]]:
    tables: dict[str, dict[str, tuple[str, str, str, str]]] = {}
    current = ""
    for line in reference_markdown().splitlines():
        if line.startswith("### "):
            # "### `early_stopping` with `method: median`" -> "early_stopping[median]"
            title = re.fullmatch(r"### `(\w+)`(?: with `method: (\w+)`)?", line)
            current = "" if title is None else title[1] + (f"[{title[2]}]" if title[2] else "")
            tables[current] = {}
        elif (match := ROW.match(line)) is not None:
            name, kind, default, required, doc = match.groups()
            tables[current][name] = (kind, default, required, doc)
    return tables


SECTIONS = sections()


def _table_name(section: str, cls: type) -> str:
    method = getattr(cls, "model_fields", {}).get("method")
    if section != "early_stopping" or method is None or method.default == "none":
        return section
    return f"{section}[{method.default}]" if cls is not StoppingSettings else section


@pytest.mark.parametrize(
    ("section", "cls"), SECTIONS, ids=[_table_name(s, c) or "top" for s, c in SECTIONS]
)
def test_reference_lists_every_key_with_the_default_it_loads_with(
    section: str, cls: type, tmp_path: Path
) -> None:
    image = tmp_path / "i.sif"
    image.write_text("")
    data = {**minimal(), "singularity": {"image": str(image)}}
    if section == "git_params":
        data.update(run_in_working_dir=False, git_params={"url": "u"})
    table = _table_name(section, cls)
    if table != section:  # one method of early_stopping
        method = cls.model_fields["method"].default  # type: ignore[attr-defined]
        bounds = {"lower": 0.0} if method == "threshold" else {}
        data.update(training_iterations=2, early_stopping={"method": method, **bounds})
    loaded = load_config_dict(data).to_dict()
    values = loaded if not section else loaded[section]
    rows = _tables()[table]
    assert list(rows) == list(cls.model_fields)
    given = data if not section else data.get(section, {})
    for name, (kind, default, required, doc) in rows.items():
        assert kind, name
        assert doc, name
        if required == "yes":
            assert default == "—"
            assert name in given
        elif name not in given and default != "`(defaults)`":
            assert json.loads(default.strip("`")) == values[name], name
