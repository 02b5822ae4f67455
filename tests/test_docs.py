"""The documentation site: `mkdocs build --strict` passes, and the generated references hold
every command and option, every config key and every API path, so they cannot drift."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from leadscore import reference

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_the_site_builds_strict_with_every_page(site):
    for page in ("getting-started", "crm-export", "training", "report", "serving",
                 "operations", "sales-loop", "scale", "tracking-server", "architecture",
                 "reference/cli", "reference/configuration", "reference/api"):  # fmt: skip
        html = (site / page / "index.html").read_text()
        assert "<!-- generated:" not in html, page
    assert not (site / "hooks.py").exists()
    assert "leadscore models migrate" in (site / "reference" / "cli" / "index.html").read_text()


def test_the_cli_reference_has_every_command_and_option():
    from leadscore.cli import app

    text = reference.cli_reference()

    def walk(command, path):
        yield path, command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, (*path, name))

    for path, command in walk(typer.main.get_command(app), ("leadscore",)):
        assert f"`{' '.join(path)}`" in text, path
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert f"`{', '.join([*param.opts, *param.secondary_opts])}`" in text, (
                    path,
                    param.name,
                )


def test_the_configuration_reference_has_every_key():
    text = reference.config_reference()
    for _, _, ref in reference.CONFIGS:
        model = reference._model(ref)
        for name, field in model.model_fields.items():
            key = field.serialization_alias or name
            if ref.endswith("ServeConfig"):
                key = "LEADSCORE_" + name.upper()
            assert f"`{key}`" in text, (ref, name)
    for nested in ("LightGBMParams", "Grades", "ProfileRule", "ActivityRule", "RuleGrades"):
        assert f"### {nested}" in text


def test_the_api_reference_has_every_path_of_the_openapi_document():
    text = reference.api_reference()
    spec = reference.openapi_document()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in text
    for name in spec["components"]["schemas"]:
        assert f"### {name}" in text


def test_the_readme_is_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    nav = re.findall(r":\s*([\w/-]+\.md)", (ROOT / "mkdocs.yml").read_text())
    for page in set(nav) - {"index.md"}:
        assert f"docs/{page}" in readme, page
