"""The documentation site's references, generated from the code so that they cannot drift:
every command and option of the Typer app, every key of the typed configs, and the HTTP
API's OpenAPI document. `docs/hooks.py` puts them into the pages when MkDocs builds."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

# The typed configs, in the order the reference shows them: (title, file, model).
CONFIGS = (
    ("Feature config", "conf/features.yaml", "leadscore.features.config:FeatureConfig"),
    ("Training config", "conf/train.yaml", "leadscore.training.config:TrainConfig"),
    ("Points rules", "conf/rules.yaml", "leadscore.rules.config:RulesConfig"),
    ("Dataset description", "DATASET/dataset.yaml", "leadscore.crm.contract:DatasetSpec"),
    (
        "Import mapping",
        "mapping.yaml (leadscore import csv --mapping)",
        "leadscore.crm.mapping:Mapping",
    ),
    ("Server settings", "environment variables", "leadscore.serving.config:ServeConfig"),
)


def _cell(text: object) -> str:
    """Text fit for one Markdown table cell (`<name>` stays text, not an HTML tag)."""
    text = " ".join(str(text).split()).replace("&", "&amp;")
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


# --- the CLI ---------------------------------------------------------------------------


def _commands(command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        yield from _commands(sub, (*path, name))


def cli_reference() -> str:
    """Every command of `leadscore`, with its help and a table of its arguments and options."""
    import typer

    from leadscore.cli import app

    root = typer.main.get_command(app)
    out = []
    for path, command in _commands(root, ("leadscore",)):
        params = [p for p in command.params if p.name != "help"]
        ctx = type(root.make_context("leadscore", [], resilient_parsing=True))(command)
        if len(path) == 1:
            title, level = "leadscore", "##"
        else:
            title, level = " ".join(path), "##" if len(path) == 2 else "###"
        out.append(f"{level} `{title}`\n")
        if command.help:
            out.append(command.help.strip() + "\n")
        if getattr(command, "commands", None):
            listed = ", ".join(f"`{name}`" for name in sorted(command.commands))
            out.append(f"Commands: {listed}.\n")
        if not params:
            continue
        out.append("| argument or option | type | default | what it does |\n|---|---|---|---|")
        for p in params:
            if p.param_type_name == "argument":
                name = p.name.upper()
            else:
                name = ", ".join([*p.opts, *p.secondary_opts])
            kind = "flag" if getattr(p, "is_flag", False) else p.display_type(ctx).strip("<>")
            if p.required:
                default = "required"
            elif p.default is None or p.default == ():
                default = ""
            else:
                default = str(p.default)
            help_text = getattr(p, "help", None) or ""
            out.append(
                f"| `{_cell(name)}` | {_cell(kind)} | {_cell(default)} | {_cell(help_text)} |"
            )
        out.append("")
    return "\n".join(out) + "\n"


# --- the configs -----------------------------------------------------------------------


def _model(ref: str) -> type[BaseModel]:
    module, name = ref.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


def _nested(annotation) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (a model, a list or dict of them, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested(arg)]


def _type_name(annotation) -> str:
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type):
        return annotation.__name__
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " / ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return str(annotation).replace("typing.", "")


def _default(field) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return ""
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    if value is None or value == () or value == [] or value == {}:
        return ""
    return json.dumps(value, default=str)


def _model_table(model: type[BaseModel], env: bool) -> tuple[str, list[type[BaseModel]]]:
    from leadscore.serving.config import env_name

    first = "environment variable" if env else "key"
    rows = [f"| {first} | type | default | what it does |", "|---|---|---|---|"]
    nested: list[type[BaseModel]] = []
    for name, field in model.model_fields.items():
        key = env_name(name) if env else (field.serialization_alias or name)
        inner = _nested(field.annotation)
        nested += inner
        described = field.description or ""
        if inner:
            described = (described + " " if described else "") + ", ".join(
                f"[{m.__name__}](#{m.__name__.lower()})" for m in inner
            )
        rows.append(
            f"| `{_cell(key)}` | {_cell(_type_name(field.annotation))} | "
            f"{_cell(_default(field))} | {_cell(described)} |"
        )
    return "\n".join(rows), nested


def config_reference() -> str:
    """Every typed config: a table per model (nested models get their own section)."""
    out, shown = [], set()
    for title, where, ref in CONFIGS:
        model = _model(ref)
        out.append(f"## {title}\n\n`{where}`: `{ref.replace(':', '.')}`.\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith(model.__name__ + "("):
            out.append(" ".join(doc.split()) + "\n")
        table, nested = _model_table(model, env=ref.endswith("ServeConfig"))
        out.append(table + "\n")
        queue = [m for m in nested if m not in shown]
        while queue:
            sub = queue.pop(0)
            if sub in shown or sub is model:
                continue
            shown.add(sub)
            out.append(f"### {sub.__name__}\n")
            sub_doc = (sub.__doc__ or "").strip()
            if sub_doc and not sub_doc.startswith(sub.__name__ + "("):
                out.append(" ".join(sub_doc.split()) + "\n")
            table, more = _model_table(sub, env=False)
            out.append(table + "\n")
            queue += [m for m in more if m not in shown]
    return "\n".join(out) + "\n"


# --- the HTTP API ----------------------------------------------------------------------


def openapi_document() -> dict:
    """The OpenAPI document the server serves at /docs.json (BentoML's, patched)."""
    from leadscore.serving.openapi import patch_spec
    from leadscore.serving.service import LeadScoring

    return patch_spec(LeadScoring.openapi_spec.asdict())


def _schema_type(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(_schema_type(s) for s in schema[key])
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " / ".join(json.dumps(v) for v in schema["enum"])
    return str(schema.get("type", "any"))


def api_reference() -> str:
    """Each path and method (what it does, its body, its answers), then each schema."""
    spec = openapi_document()
    out = [" ".join(spec.get("info", {}).get("description", "").split()) + "\n", "## Endpoints\n"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            out.append(f"### `{method.upper()} {path}`\n")
            text = op.get("description") or op.get("summary") or ""
            if text:
                out.append(" ".join(text.split()) + "\n")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "properties" in body["schema"]:
                out.append("Body (JSON):\n\n" + _properties(body["schema"]) + "\n")
            elif body:
                out.append(f"Body: {_schema_type(body['schema'])}.\n")
            answers = ["| status | what it means | body |", "|---|---|---|"]
            for status, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                schema = next(iter(content.values()), {}).get("schema") if content else None
                answers.append(
                    f"| {status} | {_cell(answer.get('description', ''))} | "
                    f"{_schema_type(schema) if schema else ''} |"
                )
            out.append("\n".join(answers) + "\n")
    out.append("## Schemas\n")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out.append(f"### {name}\n")
        if schema.get("description"):
            out.append(" ".join(schema["description"].split()) + "\n")
        if schema.get("properties"):
            out.append(_properties(schema) + "\n")
    return "\n".join(out) + "\n"


def _properties(schema: dict) -> str:
    """An object schema's fields as a table."""
    required = set(schema.get("required", []))
    rows = ["| field | type | required | what it is |", "|---|---|---|---|"]
    for field, sub in schema["properties"].items():
        rows.append(
            f"| `{field}` | {_cell(_schema_type(sub))} | {'yes' if field in required else ''} | "
            f"{_cell(sub.get('description', ''))} |"
        )
    return "\n".join(rows)
