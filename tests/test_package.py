"""The built wheel works outside the checkout: installed into a fresh virtualenv and run in a
folder holding only a user's own modules named like ours, simulate -> train -> compare
finds the default points rules (shipped as package data) and the registered model predicts
from its own code; `leadscore init` writes a starter project from those rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAST = "bootstrap: 20\nbacktest_origins: 2\nlightgbm: {max_rounds: 60, early_stopping_rounds: 10}\n"


def _run(args, cwd, env, timeout=600):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new virtualenv with only the wheel of this checkout installed; its third-party
    dependencies come from the test's own environment (a path in a .pth file: nothing is
    downloaded, and that environment's editable leadscore is not visible)."""
    base = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LEADSCORE_"))}
    env.pop("PYTHONPATH", None)
    # Built from a copy of the sources: a build in the checkout leaves build/ behind.
    source = base / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,  # leadscore/defaults is a link to conf/
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "site",
            "demo",
            "mlruns",
            "*.egg-info",
            "__pycache__",
            "mlflow.db*",
            ".pytest_cache",
            ".ruff_cache",
            ".hypothesis",
            "notebooks",
            "tests",
        ),
    )
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"),
          str(source)], cwd=base, env=env)  # fmt: skip
    (wheel,) = (base / "dist").glob("leadscore-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=env)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=base, env=env).stdout.strip()  # fmt: skip
    # every site-packages folder the tests run with (a virtualenv's may list another's)
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "leadscore-test-deps.pth").write_text("\n".join(deps) + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
         cwd=base, env=env)  # fmt: skip
    return venv, env, base, wheel


def test_the_wheel_installs_one_top_level_name(fresh):
    import zipfile

    *_, wheel = fresh
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"leadscore"}
    assert "leadscore/features/batch.py" in names and "leadscore/crm/mappings/" not in tops
    assert any(n.startswith("leadscore/crm/mappings/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("leadscore/defaults/") and n.endswith("rules.yaml") for n in names)


# Every name the distribution once installed at the top level, as a user's own modules: each
# fails loudly if anything imports it.
USERS_OWN = ("stats", "pages", "crm", "features", "rules", "scoring", "training", "handoff",
             "stream", "serving", "simulation", "operations")  # fmt: skip


def test_the_wheel_runs_in_a_folder_of_modules_named_like_ours_with_its_packaged_rules(fresh):
    """A data scientist's project with its own `stats.py`, `features/`, `rules/`, ... and no
    leadscore configuration: `python -m leadscore simulate`, `train` and `compare` work there
    with the default points rules shipped in the wheel, and the registered model loads and
    predicts there (MLflow puts the model's code first on the path, the folder comes next)."""
    venv, env, base, _ = fresh
    work = base / "project"
    work.mkdir()
    for i, name in enumerate(USERS_OWN):
        trap = f"raise ImportError('the user\\'s own {name} was imported')\n"
        if i % 2:
            (work / f"{name}.py").write_text(trap)
        else:
            (work / name).mkdir()
            (work / name / "__init__.py").write_text(trap)
    python = str(venv / "bin" / "python")
    leadscore = str(venv / "bin" / "leadscore")
    where = _run([python, "-c", "import leadscore.crm as crm, leadscore.jobs.project as p; "
                  "print(crm.__file__); print(p.packaged('rules'))"], cwd=work, env=env)  # fmt: skip
    module, rules = where.stdout.split()
    assert module.startswith(str(venv)) and rules.startswith(str(venv)) and Path(rules).is_file()

    (base / "fast.yaml").write_text(FAST)
    _run([python, "-m", "leadscore", "simulate", "--out", "crm-export", "--leads", "1500"],
         cwd=work, env=env)  # fmt: skip
    trained = _run([leadscore, "train", "--data", "crm-export", "--config",
                    str(base / "fast.yaml")], cwd=work, env=env)  # fmt: skip
    assert "no points rules" not in trained.stderr, trained.stderr
    compared = _run([leadscore, "compare", "--data", "crm-export", "--config",
                     str(base / "fast.yaml"), "--no-learned"], cwd=work, env=env)  # fmt: skip
    assert "points rules absent" not in compared.stdout + compared.stderr
    page = (work / "reports" / "compare.html").read_text()
    assert "Points rules" in page and "the rules packed with the model" in page

    script = (
        "import json, mlflow, pandas as pd\n"
        "uri = 'models:/lead-scoring@champion'\n"
        "m = mlflow.pyfunc.load_model(uri)\n"
        "folder = mlflow.artifacts.download_artifacts(uri)\n"
        "example = json.load(open(folder + '/input_example.json'))\n"
        "out = m.predict(pd.DataFrame(example['data'], columns=example['columns']))\n"
        "import leadscore.scoring.scorer as s\n"
        "print(len(out), float(out['probability'].min()), float(out['probability'].max()))\n"
        "print(s.__file__)\n"
    )
    done = _run([python, "-c", script], cwd=work, env=env)
    first, where = done.stdout.strip().splitlines()[-2:]
    count, low, high = first.split()
    assert int(count) >= 1 and 0 < float(low) <= float(high) < 1
    assert "/code/leadscore/scoring/scorer.py" in where  # the model's own shipped code


def test_init_writes_a_starter_project_the_commands_read(fresh, tmp_path):
    venv, env, *_ = fresh
    leadscore = str(venv / "bin" / "leadscore")
    _run([leadscore, "init", str(tmp_path / "proj")], cwd=tmp_path, env=env)
    conf = tmp_path / "proj" / "conf"
    assert sorted(p.name for p in conf.iterdir()) == ["features.yaml", "rules.yaml", "train.yaml"]
    assert (conf / "rules.yaml").read_text() == (ROOT / "conf" / "rules.yaml").read_text()
    again = subprocess.run([leadscore, "init", str(tmp_path / "proj")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 1 and "exists: nothing written" in again.stderr
    assert "Traceback" not in again.stderr
