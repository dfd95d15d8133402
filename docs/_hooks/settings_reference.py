"""MkDocs hook: the settings reference, generated from ``OrraSettings`` at build time.

``docs/reference/settings.md`` holds the marker ``<!-- settings-reference -->``;
this hook replaces it with one table per section of
:class:`orra_di.settings.OrraSettings`: every environment variable with its
type, default and description. The description is the field's docstring (the
string right under it in ``orra_di/settings.py``, or in the module of a capability's
section) and, when the field has one,
its ``description=`` (what it accepts, as validation errors say it). A field
with neither fails the build: the reference is complete or it is not built.

Run by ``mkdocs build`` (``hooks:`` in ``mkdocs.yml``); ``render()`` is plain
Python, so ``python docs/_hooks/settings_reference.py`` prints the tables.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the package of this checkout, not an installed one
    sys.path.insert(0, str(ROOT))

MARKER = "<!-- settings-reference -->"
PAGE = "reference/settings.md"
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def attribute_docs(module: types.ModuleType) -> dict[tuple[str, str], str]:
    """``(class, field) -> docstring`` for every string literal right under a field."""
    tree = ast.parse(inspect.getsource(module))
    docs: dict[tuple[str, str], str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for here, after in itertools.pairwise(body):
            if (
                isinstance(here, ast.AnnAssign)
                and isinstance(here.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[(node.name, here.target.id)] = inspect.cleandoc(after.value.value)
    return docs


def type_text(annotation: Any) -> str:
    """An annotation as a reader of an environment variable needs it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_text(args[0])
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        return " \\| ".join(type_text(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_text(args[0])} (JSON)"
    if origin is dict:
        return f"table of {type_text(args[0])} → {type_text(args[1])} (JSON)"
    if annotation is type(None):
        return "unset"
    if annotation is SecretStr:
        return "secret text"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return {str: "text", int: "integer", float: "number", bool: "true \\| false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def bounds_text(field: FieldInfo) -> str:
    found = [
        f"{symbol} {getattr(m, attr)}"
        for m in field.metadata
        for attr, symbol in _BOUNDS
        if getattr(m, attr, None) is not None
    ]
    return ", ".join(found)


def default_text(field: FieldInfo) -> str:
    """The default; a default computed on the running machine is described, not shown."""
    if field.is_required():
        return "required"
    factory = field.default_factory
    if factory is not None:
        doc = inspect.getdoc(factory) if inspect.isfunction(factory) else None
        if doc and factory.__name__ != "<lambda>":
            return " ".join(doc.split())
        value: Any = factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    elif isinstance(value, list):
        value = [
            v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, BaseModel) else v
            for v in value
        ]
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def cell(text: str) -> str:
    """One table cell: one line, reST literals as markdown code, pipes escaped."""
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def describe(owner: type[BaseModel], name: str, field: FieldInfo, docs: dict[Any, str]) -> str:
    meaning = ""
    for cls in owner.__mro__:  # an inherited field keeps its base class's docstring
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            where = (cls.__name__, name)
            meaning = docs.get(where, "") or _docs_of(cls).get(where, "")
            if meaning:
                break
    accepted = field.description or ""
    if not meaning and not accepted:
        raise ValueError(
            f"{owner.__name__}.{name} has no docstring and no description: document it in "
            f"{owner.__module__} so the settings reference can list it"
        )
    parts = [meaning] if meaning else []
    if accepted:
        parts.append(f"Accepted: {accepted}.")
    return cell(" ".join(parts))


def _docs_of(owner: type[BaseModel]) -> dict[tuple[str, str], str]:
    """Field docstrings of the module ``owner`` is defined in (a section may live anywhere)."""
    return attribute_docs(sys.modules[owner.__module__])


def _nested_section(field: FieldInfo) -> type[BaseModel] | None:
    """The settings model a field holds, alone or optional (``llm.auth``), else None."""
    annotation = field.annotation
    optional = get_origin(annotation) in (Union, types.UnionType)
    for candidate in get_args(annotation) if optional else (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def table(
    owner: type[BaseModel],
    prefix: str,
    fields: dict[str, FieldInfo],
    docs: dict[Any, str],
    *,
    header: bool = True,
) -> list[str]:
    rows = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    if not header:
        rows = []
    for name, field in fields.items():
        kind = type_text(field.annotation)
        limits = bounds_text(field)
        if limits:
            kind += f", {limits}"
        rows.append(
            f"| `{prefix}{name.upper()}` | {kind} | {cell(default_text(field))} "
            f"| {describe(owner, name, field, docs)} |"
        )
        nested = _nested_section(field)
        if nested is not None and owner is not nested:
            rows += table(
                nested, f"{prefix}{name.upper()}__", nested.model_fields, docs, header=False
            )
    return rows


def render() -> str:
    """The markdown of every setting, section by section."""
    from orra_di import settings as module
    from orra_di.agent import AgentProfile

    docs = attribute_docs(module)
    root = module.OrraSettings
    for field in root.model_fields.values():  # sections kept in their capability's module
        section_module = inspect.getmodule(field.annotation)
        if _is_section(field) and section_module not in (None, module):
            docs |= attribute_docs(section_module)
    prefix = module.ENV_PREFIX
    out: list[str] = []
    top = {n: f for n, f in root.model_fields.items() if not _is_section(f)}
    for name, field in root.model_fields.items():
        if not _is_section(field):
            continue
        section = field.annotation
        assert isinstance(section, type) and issubclass(section, BaseModel)
        if section.__module__ != module.__name__:  # a section kept in its capability's module
            docs.update(attribute_docs(sys.modules[section.__module__]))
        summary = " ".join((inspect.getdoc(section) or "").split("\n\n")[0].split())
        docs = {**attribute_docs(sys.modules[section.__module__]), **docs}  # a section's own module
        out += [f"## `{name}`", "", summary, ""]
        out += table(section, f"{prefix}{name.upper()}__", section.model_fields, docs)
        out.append("")
    out += ["## Lists and tables", "", "Given as JSON in an environment variable.", ""]
    out += table(root, prefix, top, docs)
    out += ["", "An agent (an item of `ORRA_AGENTS`) takes these keys:", ""]
    out += ["| Key | Type | Default |", "| --- | --- | --- |"]
    for name, field in AgentProfile.model_fields.items():
        out.append(f"| `{name}` | {type_text(field.annotation)} | {cell(default_text(field))} |")
    out += [
        "",
        "## Where the settings come from",
        "",
        "| Variable | What it names |",
        "| --- | --- |",
        f"| `{module.CONFIG_FILE_ENV}` | a TOML file of settings "
        f"(else `{module.DEFAULT_CONFIG_FILE}` in the working directory, when present) |",
        f"| `{module.SECRETS_DIR_ENV}` | a directory with one file per setting "
        f"(else `{module.DEFAULT_SECRETS_DIR}`, when it exists) |",
        *(
            f"| `{variable}` | the {kind} key when `ORRA_LLM__API_KEY` is unset |"
            for kind, variable in module.VENDOR_KEY_ENV.items()
        ),
        "",
        "With neither `ORRA_LLM__KIND` nor `ORRA_LLM__BASE_URL` set, the first of "
        + " and ".join(f"`{v}`" for v in module.VENDOR_KEY_ENV.values())
        + " that is set chooses the vendor; with none, the offline model answers (rules that"
        " call `calculate` for arithmetic and `current_time` for the time, and say how to plug"
        " in a real model).",
        "",
    ]
    return "\n".join(out)


def _is_section(field: FieldInfo) -> bool:
    annotation = field.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: fill the marker of the settings page."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker")
    return markdown.replace(MARKER, render())


if __name__ == "__main__":
    print(render())
