"""User code runs like built-in code: a user optimizer and a user problem, each in its own file
next to a study file, named in the study's conditions, under every executor; the cache follows
edits to the user's files but not to the study's analysis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

USER_FILES = Path(__file__).parent / "data" / "extending"


def _run(folder: Path, *args: str) -> str:
    """``convstudy run user_study.py --quick ...`` in a fresh process; returns its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "convstudy", "run", "user_study.py", "--quick", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _computed(output: str) -> tuple[int, int]:
    found = re.search(r"extending: (\d+) cells? computed, (\d+) from cache", output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


@pytest.fixture
def user_folder(tmp_path) -> Path:
    folder = tmp_path / "user"
    shutil.copytree(USER_FILES, folder)
    return folder


def test_user_optimizer_and_problem_run_by_name_under_every_executor(user_folder):
    _run(user_folder, "--out", "serial")
    _run(user_folder, "--out", "jobs", "--jobs", "2")
    _run(user_folder, "--out", "dask", "--dask-local", "2")
    tables = {
        name: pd.read_csv(user_folder / name / "extending" / "tables" / "final.csv")
        for name in ("serial", "jobs", "dask")
    }
    serial = tables["serial"]
    assert sorted(serial["optimizer"]) == ["lion", "lion:lion", "sgd"]
    assert serial["final_loss"].notna().all()
    assert (serial["path"] == "fast").all()  # the user's rule and problem ran compiled
    for other in ("jobs", "dask"):
        pd.testing.assert_frame_equal(tables[other], serial)
    runs = {
        name: pd.read_parquet(user_folder / name / "extending" / "runs.parquet")
        for name in ("serial", "jobs", "dask")
    }
    for other in ("jobs", "dask"):
        pd.testing.assert_frame_equal(runs[other], runs["serial"])


def test_editing_the_user_optimizer_recomputes_and_editing_the_analysis_does_not(user_folder):
    assert _computed(_run(user_folder, "--out", "o")) == (3, 0)
    assert _computed(_run(user_folder, "--out", "o")) == (0, 3)
    study = user_folder / "user_study.py"
    study.write_text(study.read_text().replace("# ANALYSIS MARKER", "# edited analysis"))
    assert _computed(_run(user_folder, "--out", "o")) == (0, 3)
    lion = user_folder / "lion.py"
    before = pd.read_csv(user_folder / "o" / "extending" / "tables" / "final.csv")
    lion.write_text(lion.read_text().replace("SCALE = 1.0", "SCALE = 0.5"))
    # a cell's code fingerprint covers the user modules its condition names: the two Lion
    # cells recompute, the SGD cell beside them does not
    assert _computed(_run(user_folder, "--out", "o")) == (2, 1)
    after = pd.read_csv(user_folder / "o" / "extending" / "tables" / "final.csv")
    final = [t.set_index("optimizer")["final_loss"] for t in (before, after)]
    changed = final[0] != final[1]
    assert changed.to_dict() == {"lion": True, "lion:lion": True, "sgd": False}
    problem = user_folder / "line_problem.py"
    problem.write_text(problem.read_text().replace("0.1 * rng", "0.2 * rng"))
    assert _computed(_run(user_folder, "--out", "o")) == (3, 0)


def test_code_fingerprints_are_the_same_in_every_process():
    script = (
        "from convstudy.loader import load_study, list_studies\n"
        "from convstudy.runner import code_fingerprint\n"
        "print([code_fingerprint(s, s.grid(s.scale(True)))"
        " for s in map(load_study, list_studies())])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(outputs) == 1


def test_the_readme_examples_run_by_name_on_two_processes(tmp_path):
    examples = Path(__file__).parents[1] / "examples"
    proc = subprocess.run(
        [sys.executable, "-m", "convstudy", "run", str(examples / "lion_study.py"), "--quick",
         "--replicates", "4", "--jobs", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "lion_vs_baselines"
    table = pd.read_csv(folder / "tables" / "final_subopt.csv").set_index("optimizer")
    assert sorted(table.index) == ["adam", "lion", "sgd"] and (table["n"] == 4).all()
    assert (table["ci_low"] <= table["estimate"]).all() and (table["estimate"] > 0).all()
    runs = pd.read_parquet(folder / "runs.parquet")
    assert set(runs["engine"]) == {"fast"}  # the user's rule and problem ran compiled
