"""Typed config sections (pydantic v2 models) and their errors in hpoptim's words.

A section is a frozen model deriving from :class:`Section`; each key is declared
once, with its type, default, bounds (``Field(ge=...)``), one-line doc
(``Field(description=...)``) and rule (a validator raising :func:`rule_error`; a
rule over several keys is a :func:`cross_rule`, applied even when other keys of
the section are invalid).
Unknown keys are refused. The code that uses a section takes the model itself:
the launchers declare theirs next to them (``LocalSettings``, ``SlurmSettings``)
and the run config nests them.

:func:`problems_of` turns pydantic's :class:`~pydantic.ValidationError` into
:class:`~hpoptim.errors.ConfigProblem` s with dotted key paths and our wording:
``must be an integer >= 1, got 0``, ``required key is missing (...)``,
``unknown key; did you mean 'partition'?`` — one problem per key, each unknown
key carrying its section's valid keys, which :class:`~hpoptim.errors.ConfigError`
lists once per section.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.messages import did_you_mean, join_path, show

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "AbsolutePath",
    "Section",
    "Strings",
    "cross_rule",
    "describe",
    "knows",
    "problems_of",
    "reference_rows",
    "rule_error",
    "section_of",
]

_RULE = "hpoptim_rule"
#: Attribute of a :func:`cross_rule` function: the keys it reads.
_KEYS_READ = "_hpoptim_keys_read"
#: Set while a section validates, so that nested sections leave their errors to it.
_VALIDATING: ContextVar[bool] = ContextVar("_VALIDATING", default=False)
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}
_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


#: A list of strings, stored as a tuple (a YAML/JSON list is accepted).
Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]


def _absolute(value: Any) -> Any:
    """``~`` expanded and made absolute against the current directory (no symlinks resolved)."""
    if isinstance(value, str | Path) and str(value) != "":
        return Path(os.path.normpath(Path(value).expanduser().absolute()))
    return value


#: A path, ``~`` expanded and made absolute against the current directory.
AbsolutePath = Annotated[Path, BeforeValidator(_absolute)]


def rule_error(message: str = "", problems: Sequence[ConfigProblem] = ()) -> PydanticCustomError:
    """The error a section's rule raises: one message, or problems at relative key paths."""
    return PydanticCustomError(
        _RULE, "{message}", {"message": message or str(problems[0]), "problems": tuple(problems)}
    )


def cross_rule(*keys: str) -> Callable[[Callable[[Any], Any]], Any]:
    """Declare a section's rule over several ``keys`` (an "after" model validator).

    pydantic applies such a rule only when every key of the section is valid; a
    :class:`Section` also applies it when only other keys are invalid, so that
    every problem is reported at once. The rule reads only ``keys`` and raises
    :func:`rule_error`.
    """

    def decorate(func: Callable[[Any], Any]) -> Any:
        setattr(func, _KEYS_READ, keys)
        return model_validator(mode="after")(func)

    return decorate


def _cross_rule_errors(cls: type[BaseModel], data: Any, exc: ValidationError) -> list[Any]:
    """The errors of ``cls``'s cross rules whose keys are valid, on ``data`` that failed."""
    errors = exc.errors(include_url=False)
    if not isinstance(data, Mapping) or any(not err["loc"] for err in errors):
        return []
    bad = {err["loc"][0] for err in errors}
    good = {k: v for k, v in data.items() if k in cls.model_fields and k not in bad}
    stand_in = cls.model_construct(**good)  # the valid keys as given, defaults for the rest
    found = []
    for decorator in cls.__pydantic_decorators__.model_validators.values():
        keys = getattr(decorator.func, _KEYS_READ, None)
        if keys is None or bad & set(keys) or any(k not in cls.model_fields for k in keys):
            continue
        try:
            decorator.func(stand_in)
        except PydanticCustomError as err:
            found.append(err)
    return found


def _init_details(exc: ValidationError) -> list[InitErrorDetails]:
    """``exc``'s errors in the form that builds a new :class:`ValidationError`."""
    details: list[InitErrorDetails] = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx")
        detail: InitErrorDetails
        if err["type"] == _RULE:
            kind = PydanticCustomError(_RULE, "{message}", ctx)
            detail = {"type": kind, "loc": err["loc"], "input": err["input"]}
        else:
            detail = {"type": err["type"], "loc": err["loc"], "input": err["input"]}
            if ctx is not None:
                detail["ctx"] = ctx
        details.append(detail)
    return details


class Section(BaseModel):
    """Base of config sections: frozen, strict types, unknown keys refused, finite numbers.

    Building a section directly (``SlurmOptions(poll_interval_s=0)``) raises
    :class:`~hpoptim.errors.ConfigError` whose key paths start with
    :attr:`section_path`.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, validate_default=False
    )

    #: The section's key in the config ("" for the top level), for errors of ``__init__``.
    section_path: ClassVar[str] = ""
    #: Other names for keys (e.g. cluster_utils'), used for "did you mean" only.
    synonyms: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **data: Any) -> None:
        if _VALIDATING.get():  # a nested section: pydantic gathers its errors with the rest
            super().__init__(**data)
            return
        token = _VALIDATING.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(problems_of(exc, type(self), data, self.section_path)) from None
        finally:
            _VALIDATING.reset(token)

    @classmethod
    def validate_dict(cls, data: Any, prefix: str = "") -> tuple[Self | None, list[ConfigProblem]]:
        """Validate ``data``; return the section (None on any problem) and every problem."""
        token = _VALIDATING.set(True)
        try:
            return cls.model_validate(data), []
        except ValidationError as exc:
            return None, problems_of(exc, cls, data, prefix)
        finally:
            _VALIDATING.reset(token)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    @model_validator(mode="wrap")
    @classmethod
    def _cross_rules_despite_other_problems(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        """On invalid keys, also apply each :func:`cross_rule` whose keys are valid."""
        try:
            return handler(data)
        except ValidationError as exc:
            extra = _cross_rule_errors(cls, data, exc)
            if not extra:
                raise
            details = _init_details(exc)
            details += [{"type": err, "loc": (), "input": data} for err in extra]
            raise ValidationError.from_exception_data(cls.__name__, details) from None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``slurm:`` with nothing under it (null) means a section of defaults."""
        if not isinstance(data, Mapping):
            return data
        empty = [
            name
            for name, field in cls.model_fields.items()
            if data.get(name, 0) is None and _section_type(field.annotation, nullable=False)
        ]
        return {**data, **{name: {} for name in empty}} if empty else data

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings, tuples as lists) that validates back equal."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------ type words


def _bare(hint: Any) -> Any:
    """``Annotated[X, ...]`` -> ``X``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``, else ``(hint, False)``; ``Annotated`` stripped."""
    hint = _bare(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return _bare(args[0]), True
    return hint, False


def _section_type(hint: Any, nullable: bool | None = None) -> type[Section] | None:
    inner, is_nullable = _optional(hint)
    if nullable is not None and is_nullable != nullable:
        return None
    return inner if isinstance(inner, type) and issubclass(inner, Section) else None


def section_of(model: type[Section], name: str) -> type[Section] | None:
    """The section class of key ``name`` of ``model`` (None if it is not a section)."""
    field = model.model_fields.get(name)
    return None if field is None else _section_type(field.annotation)


def _type_words(inner: Any) -> str:
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if _section_type(inner) is not None:
        return "section"
    if inner in _SCALARS:
        return _SCALARS[inner]
    if origin is tuple:
        return "list of strings" if args[0] is str else "list of mappings"
    if origin is not None and args and args[-1] is str:
        return "mapping of strings to strings"
    return "mapping"


def describe(field: FieldInfo, with_rule: bool = True, length: bool = True) -> str:
    """A key's type in words with its bounds and rule, e.g. ``integer >= 1 or null``."""
    inner, nullable = _optional(field.annotation)
    text = _type_words(inner)
    min_len = [m for m in field.metadata if isinstance(m, annotated_types.MinLen)]
    if length and any(m.min_length > 0 for m in min_len):
        text = f"non-empty {text}"
    bounds = [
        f"{op} {getattr(m, attr):g}"
        for m in field.metadata
        for kind, attr, op in _BOUNDS
        if isinstance(m, kind)
    ]
    text = f"{text} {' and '.join(bounds)}" if bounds else text
    extra = field.json_schema_extra
    rule_doc = extra.get("rule_doc") if isinstance(extra, dict) and with_rule else None
    text = f"{text} ({rule_doc})" if rule_doc else text
    return f"{text} or null" if nullable else text


def _expected(field: FieldInfo, kind: str) -> str:
    what = describe(field, with_rule=False, length=kind.endswith("too_short"))
    if what.startswith("'"):
        *first, last = what.split(" or ")
        return f"{', '.join(first)} or {last}"
    return ("an " if what[0] in "aeiou" else "a ") + what


# ---------------------------------------------------------- error translation


def _lookup(data: Any, key: str | int) -> Any:
    if isinstance(data, Mapping):
        return data.get(key)
    return None


def _unknown(
    model: type[Section], name: str, path: str, synonyms: Mapping[str, str]
) -> ConfigProblem:
    valid = list(model.model_fields)
    meant = synonyms.get(name, "").removeprefix(f"{path}.")
    if meant in valid or "." in meant:  # a dotted synonym names a key of another section
        hint = f"; did you mean {meant!r}?"
    else:
        hint = did_you_mean(name, valid)
    return ConfigProblem(join_path(path, name), f"unknown key{hint}", valid_keys=tuple(valid))


def _field_problems(
    err: Any, model: type[Section], name: str, value: Any, where: str
) -> list[ConfigProblem]:
    field = model.model_fields[name]
    kind = err["type"]
    if kind == "missing":
        doc = (field.description or "").rstrip(".")
        return [ConfigProblem(where, f"required key is missing ({doc})")]
    if kind == _RULE and len(err["loc"]) == 0:
        return _rule_problems(err, where)
    if _section_type(field.annotation) is not None:
        return [ConfigProblem(where, f"must be a section (a mapping), got {show(value)}")]
    return [ConfigProblem(where, f"must be {_expected(field, kind)}, got {show(value)}")]


def _rule_problems(err: Any, where: str) -> list[ConfigProblem]:
    ctx = err.get("ctx") or {}
    problems = ctx.get("problems") or ()
    if not problems:
        return [ConfigProblem(where, str(ctx.get("message", err["msg"])))]
    return [p.at(join_path(where, p.path)) for p in problems]


def _one(err: Any, model: type[Section], data: Any, prefix: str) -> list[Any]:
    """The problems of one pydantic error, found by walking its location through sections."""
    synonyms = model.synonyms
    loc = tuple(err["loc"])
    path = prefix
    for i, part in enumerate(loc):
        if not isinstance(part, str) or part not in model.model_fields:
            if err["type"] == "extra_forbidden" and i == len(loc) - 1:
                return [_unknown(model, str(part), path, synonyms)]
            break
        value = _lookup(data, part)
        where = join_path(path, part)
        inner = _section_type(model.model_fields[part].annotation)
        if inner is not None and i < len(loc) - 1 and isinstance(value, Mapping):
            model, data, path = inner, value, where
            continue
        return _field_problems({**err, "loc": loc[i + 1 :]}, model, part, value, where)
    if err["type"] == _RULE:
        return _rule_problems(err, path)
    return [ConfigProblem(path, str(err["msg"]))]


def problems_of(
    exc: ValidationError, model: type[Section], data: Any, prefix: str = ""
) -> list[ConfigProblem]:
    """pydantic's errors for ``data`` validated as ``model``, in hpoptim's words.

    Args:
        exc: The validation error.
        model: The section class that was validated.
        data: The input (to quote a key's whole value rather than a piece of it).
        prefix: Key path of ``data`` in the config.

    Returns:
        One problem per offending key (several errors inside one value are one
        problem), in the order pydantic found them.
    """
    seen: set[str] = set()
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        for problem in _one(err, model, data, prefix):
            if problem.path not in seen or err["type"] == _RULE:
                seen.add(problem.path)
                out.append(problem)
    return out


# ------------------------------------------------------------ key reference


def knows(model: type[Section], path: tuple[str | int, ...]) -> bool:
    """Whether section ``model`` defines the key at ``path`` (through nested sections)."""
    section: type[Section] | None = model
    for i, part in enumerate(path):
        if section is None or not isinstance(part, str) or part not in section.model_fields:
            return False
        if i == len(path) - 1:
            return True
        section = section_of(section, part)
    return False


def reference_rows(model: type[Section]) -> list[tuple[str, str, str, str, str]]:
    """One ``(key, type, default, required, description)`` row per key of ``model``."""
    rows = []
    for name, field in model.model_fields.items():
        required = field.is_required()
        if required:
            shown = "—"
        elif _section_type(field.annotation) is not None and field.default_factory is not None:
            shown = "(defaults)"
        else:
            default = field.get_default(call_default_factory=True)
            shown = json.dumps(_plain(default))
        rows.append(
            (name, describe(field), shown, "yes" if required else "no", field.description or "")
        )
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
