"""Where the training code comes from: the config's ``git_params`` section, declared once.

The config nests :class:`GitSource` as its ``git_params`` section, and
:mod:`hpoptim.source.checkout` clones from it: one model, its keys, defaults and
rules in one place. It imports no git, so reading a config stays cheap.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from hpoptim.sections import AbsolutePath, Section, cross_rule, rule_error

__all__ = ["GitSource"]


class GitSource(Section):
    """Where to clone the training code from (``git_params``).

    At most one of ``branch``, ``tag`` and ``commit`` may be given; with none, the
    current HEAD of a local repository, or the remote's default branch, is used.
    ``GitSource(url, tag=...)`` builds one directly; a bad value raises
    :class:`~hpoptim.errors.ConfigError` naming ``git_params.<key>``.
    """

    section_path: ClassVar[str] = "git_params"

    url: str = Field(description="Repository URL or local path to clone.")
    branch: str | None = Field(
        None, description="Branch to check out (at most one of branch/tag/commit)."
    )
    tag: str | None = Field(None, description="Tag to check out.")
    commit: str | None = Field(
        None, description="Commit to check out: a full or short SHA, or any ref git knows."
    )
    depth: int | None = Field(None, ge=1, description="Shallow-clone depth; null: full history.")
    submodules: bool = Field(False, description="Also check out submodules.")
    cache_dir: AbsolutePath | None = Field(
        None, description="Where clones are cached; null: inside the results dir."
    )

    def __init__(self, url: str | None = None, /, **data: Any) -> None:
        super().__init__(**(data if url is None else {"url": url, **data}))

    @field_validator("url")
    @classmethod
    def _not_an_option(cls, value: str) -> str:
        if value.startswith("-") or not value:
            raise rule_error(f"must be a repository URL or path, got {value!r}")
        import git  # only when a url is checked: reading a config stays cheap otherwise

        try:
            git.Git.check_unsafe_protocols(value)
        except git.UnsafeProtocolError:
            transport = value.split(":", 1)[0]
            raise rule_error(
                f"uses git's {transport}:: transport, which runs commands and is not allowed; "
                "give a repository URL (https://, ssh://, git@host:path) or a local path, "
                f"got {value!r}"
            ) from None
        return value

    @cross_rule("branch", "tag", "commit")
    def _one_ref(self) -> GitSource:
        given = {k: getattr(self, k) for k in ("branch", "tag", "commit")}
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) > 1:
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
            raise rule_error(f"give at most one of branch, tag, commit; got {shown}")
        return self

    @property
    def ref(self) -> str | None:
        """The ref asked for (branch, tag or commit), or ``None`` for the default."""
        return self.branch or self.tag or self.commit

    @property
    def ref_kind(self) -> str | None:
        """``"branch"``, ``"tag"``, ``"commit"`` or ``None``."""
        for kind in ("branch", "tag", "commit"):
            if getattr(self, kind):
                return kind
        return None

    def describe_ref(self) -> str:
        """The ref for messages, e.g. ``tag 'v1.0'`` or ``the default branch``."""
        kind = self.ref_kind
        return "the default HEAD" if kind is None else f"{kind} {self.ref!r}"
