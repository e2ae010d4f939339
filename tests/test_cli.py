"""The ``convstudy`` command end to end, on a tiny user study file outside ``studies/``."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from convstudy import loader as registry
from convstudy.cli import main

SUMMARY = re.compile(r"^(\S+): (\d+) cells? computed, (\d+) from cache, [\d.]+ s -> (.+?)(;|$)")


def summaries(stdout: str) -> dict[str, tuple[int, int, str]]:
    """{study: (computed, from cache, folder)} from the one-line summaries of `run`."""
    found = {}
    for line in stdout.splitlines():
        m = SUMMARY.match(line)
        if m:
            found[m[1]] = (int(m[2]), int(m[3]), m[4])
    return found


def outputs(folder: Path) -> dict[str, bytes]:
    """Bytes of every data file a study writes (tables, claims, README, runs.parquet)."""
    files = sorted(folder.glob("tables/*")) + [
        folder / name for name in ("claims.csv", "claims.md", "README.md", "runs.parquet")
    ]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------- subprocess


def test_run_in_a_subprocess_writes_outputs_then_uses_the_cache(tiny_study_file, tmp_path, capsys):
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "convstudy", "run", str(tiny_study_file), "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert summaries(first.stdout)["tiny"][:2] == (4, 0)
    folder = out / "tiny"
    for rel in (
        "runs.parquet",
        "README.md",
        "claims.csv",
        "tables/means.csv",
        "tables/means.md",
        "figures/means.png",
        "study.json",
    ):
        assert (folder / rel).is_file(), rel
    runs = pd.read_parquet(folder / "runs.parquet")
    assert len(runs) == 4 * 8  # 4 conditions x the study's 8 default replicates
    assert sorted(runs["mu"].unique()) == [0.0, 1.0, 2.0, 3.0]
    # each condition's mean of draws estimates its mu (400 draws: sd of a mean 0.05)
    per_mu = runs.groupby("mu")["value"].mean()
    assert (per_mu - per_mu.index).abs().max() < 0.1

    # the cache written by that process serves this one
    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--out", out, "--quiet")
    assert status == 0 and summaries(stdout)["tiny"][:2] == (0, 4)


def test_usage_error_in_a_subprocess_is_one_line_without_traceback():
    cmd = [sys.executable, "-m", "convstudy", "run", "no_such_study", "--replicates", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convstudy: error: Unknown study"), proc.stderr


# --------------------------------------------------------------------------- run, cache, fresh


def test_run_in_process_cache_and_fresh(tiny_study_file, tmp_path, capsys):
    out = tmp_path / "reports"
    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--out", out, "--quiet")
    assert status == 0
    assert summaries(stdout)["tiny"] == (4, 0, str(out / "tiny"))
    assert "1 reproduced" in stdout
    first = outputs(out / "tiny")

    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--out", out, "--quiet")
    assert status == 0 and summaries(stdout)["tiny"][:2] == (0, 4)
    assert outputs(out / "tiny") == first

    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--out", out, "--quiet", "--fresh")
    assert status == 0 and summaries(stdout)["tiny"][:2] == (4, 0)
    assert outputs(out / "tiny") == first


def test_replicates_seed_and_quick_change_the_run(tiny_study_file, tmp_path, capsys):
    out = tmp_path / "reports"
    run_cli(capsys, "run", tiny_study_file, "--out", out, "--quick", "--replicates", "3")
    quick = pd.read_parquet(out / "tiny" / "runs.parquet")
    assert len(quick) == 4 * 3
    run_cli(capsys, "run", tiny_study_file, "--out", out, "--quick", "--replicates", "3",
            "--seed", "7")  # fmt: skip
    other = pd.read_parquet(out / "tiny" / "runs.parquet")
    assert len(other) == 4 * 3
    assert not other["value"].equals(quick["value"])


def test_jobs_and_chunks_give_identical_outputs(tiny_study_file, tmp_path, capsys):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert run_cli(capsys, "run", tiny_study_file, "--out", serial, "--quiet")[0] == 0
    status, stdout, _ = run_cli(
        capsys, "run", tiny_study_file, "--out", parallel, "--quiet", "--jobs", "2",
        "--chunk-size", "3",
    )  # fmt: skip
    assert status == 0
    assert summaries(stdout)["tiny"][:2] == (4 * 3, 0)  # 8 replicates in chunks of 3
    assert outputs(parallel / "tiny") == outputs(serial / "tiny")


def test_interrupted_run_resumes_from_the_cache_with_identical_tables(
    tiny_study_file, tmp_path, capsys
):
    complete, resumed = tmp_path / "complete", tmp_path / "resumed"
    assert run_cli(capsys, "run", tiny_study_file, "--out", complete, "--quiet")[0] == 0

    marker = tiny_study_file.with_suffix(".fail")
    marker.write_text("3.0")  # the last condition (mu = 3) crashes, as a kill would stop it
    status, stdout, stderr = run_cli(capsys, "run", tiny_study_file, "--out", resumed, "--quiet")
    assert status == 1 and stdout == ""
    assert "study 'tiny' failed" in stderr and "RuntimeError" in stderr  # with its traceback
    assert "simulated crash" in stderr
    assert stderr.splitlines()[-1].startswith("convstudy: 1 of 1 studies failed: tiny")
    assert len(list((resumed / ".cache" / "tiny").glob("*.parquet"))) == 3
    assert not (resumed / "tiny").exists()  # nothing written before the analysis

    marker.unlink()
    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--out", resumed, "--quiet")
    assert status == 0
    assert summaries(stdout)["tiny"][:2] == (1, 3)
    assert outputs(resumed / "tiny") == outputs(complete / "tiny")


# --------------------------------------------------------------------------- list, help


def test_list_shows_studies_titles_and_claims(tiny_study_file, monkeypatch, capsys):
    real_load = registry.load_study
    monkeypatch.setattr(registry, "list_studies", lambda: ["tiny"])
    monkeypatch.setattr(
        registry, "load_study", lambda name: real_load(tiny_study_file if name == "tiny" else name)
    )
    status, stdout, _ = run_cli(capsys, "list")
    assert status == 0
    lines = stdout.splitlines()
    assert lines[0].split() == ["study", "claims", "title"]
    assert lines[1].split(maxsplit=2) == ["tiny", "1", "Tiny study: sample means"]


def test_list_of_the_built_in_studies(capsys):
    status, stdout, _ = run_cli(capsys, "list")
    assert status == 0
    names = registry.list_studies()
    if not names:
        assert "No built-in studies" in stdout
    for name in names:
        assert re.search(rf"^{re.escape(name)}\s", stdout, flags=re.M), name


@pytest.mark.parametrize(
    "argv", [["--help"], ["list", "--help"], ["run", "--help"], ["report", "--help"],
             ["claims", "--help"], ["reproduce", "--help"]]
)  # fmt: skip
def test_help_exits_0(argv, capsys):
    status, stdout, _ = run_cli(capsys, *argv)
    assert status == 0
    assert stdout.startswith("usage: convstudy")


def test_version(capsys):
    status, stdout, _ = run_cli(capsys, "--version")
    assert status == 0 and re.fullmatch(r"convstudy \S+\n", stdout)


# --------------------------------------------------------------------------- usage errors


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "syntax": "def broken(:\n",
        "no_study": "x = 1\n",
        "not_a_study": "study = 42\n",
        "raises": "raise ImportError('needs a package that is not installed')\n",
        "bad_condition": (
            "from convstudy.study import Study, simulate_cell\n"
            "study = Study(name='bad', title='t', description='d',\n"
            "              conditions=lambda scale: [{'mu': [1, 2]}],\n"
            "              compute=simulate_cell, analyze=lambda runs, scale: None)\n"
        ),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = folder / f"{name}.py"
        paths[name].write_text(text)
    return paths


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "no_such_study"], "Unknown study 'no_such_study'"),
        (["run", "{tiny}", "--replicates", "-3"], "--replicates"),
        (["run", "{tiny}", "--replicates", "two"], "--replicates"),
        (["run", "{tiny}", "--jobs", "0"], "--jobs"),
        (["run", "{tiny}", "--seed", "-1"], "--seed"),
        (["run", "{tiny}", "--chunk-size", "0"], "--chunk-size"),
        (["run", "{tiny}", "--scheduler", "tcp://h:1", "--dask-local", "2"], "not allowed"),
        (["run"], "STUDY"),
        (["run", "{bad}/missing.py"], "does not exist"),
        (["run", "{bad}/syntax.py"], "SyntaxError"),
        (["run", "{bad}/no_study.py"], "must define `study"),
        (["run", "{bad}/not_a_study.py"], "its `study` is of type int"),
        (["run", "{bad}/raises.py"], "ImportError: needs a package"),
        (["run", "{bad}/bad_condition.py", "--out", "{tmp}/r"], "Condition values of bad"),
        (["claims", "{tiny}", "--strict", "--jobs", "-2"], "--jobs"),
        (["frobnicate"], "invalid choice"),
        ([], "choose a command"),
    ],
)
def test_usage_errors_print_one_line_and_exit_2(argv, needle, tiny_study_file, tmp_path, capsys):
    bad = tmp_path / "bad"
    _bad_files(bad)
    subs = {"tiny": str(tiny_study_file), "bad": str(bad), "tmp": str(tmp_path)}
    status, stdout, stderr = run_cli(capsys, *[a.format(**subs) for a in argv])
    assert status == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("convstudy: error: ")
    assert needle in lines[0]


def test_bench_is_forwarded_or_missing(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("convstudy.bench")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "convstudy.bench", fake)
    assert run_cli(capsys, "bench", "--help", "--quick")[0] == 0
    assert seen == [["--help", "--quick"]]

    monkeypatch.setitem(sys.modules, "convstudy.bench", None)  # import fails
    status, _, stderr = run_cli(capsys, "bench")
    assert status == 2
    assert len(stderr.splitlines()) == 1 and "benchmarks are not available" in stderr


# --------------------------------------------------------------------------- report, claims


def test_report_writes_the_index(tiny_study_file, tmp_path, capsys):
    out = tmp_path / "reports"
    run_cli(capsys, "run", tiny_study_file, "--out", out, "--quiet")
    status, stdout, _ = run_cli(capsys, "report", "--out", out)
    assert status == 0
    html = (out / "index.html").read_text()
    assert 'href="tiny/figures/means.png"' in html and 'src="data:image/png;base64,' in html
    assert "tiny/tables/means.md" in (out / "index.md").read_text()


def test_report_on_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    status, _, stderr = run_cli(capsys, "report", "--out", tmp_path / "nothing")
    assert status == 2 and "existing reports folder" in stderr


def test_claims_strict_exits_1_only_when_a_claim_is_not_reproduced(
    tiny_study_file, failing_study_file, tmp_path, capsys
):
    out = tmp_path / "reports"
    status, stdout, _ = run_cli(
        capsys, "claims", tiny_study_file, "--strict", "--table", "--out", out
    )
    assert status == 0
    assert re.search(r"^1\s+tiny-mean\s.*\sreproduced$", stdout, flags=re.M), stdout
    claims = pd.read_csv(out / "claims.csv")
    assert claims["verdict"].tolist() == ["reproduced"]

    status, stdout, stderr = run_cli(
        capsys, "claims", tiny_study_file, failing_study_file, "--strict", "--out", out
    )
    assert status == 1
    assert "1 claim check(s) not reproduced" in stderr
    assert (
        "2 checks of 1 claim: 1 reproduced, 0 within tolerance, 1 not reproduced, 0 inconclusive."
        in stdout
    )
    claims = pd.read_csv(out / "claims.csv").set_index("id")
    assert claims.loc["tiny_wrong-mean", "verdict"] == "not reproduced"
    # the estimate is measured (mean of draws at mu = 1, 8 replicates), not hard-coded
    assert abs(claims.loc["tiny_wrong-mean", "estimate"] - 1.0) < 0.1
    assert claims.loc["tiny_wrong-mean", "n_replicates"] == 8
    assert "| **not reproduced** (CI [" in (out / "claims.md").read_text()

    status, _, _ = run_cli(capsys, "claims", tiny_study_file, failing_study_file, "--out", out)
    assert status == 0  # without --strict a failed claim is a finding, not an error


def test_reproduce_writes_studies_claims_and_index(
    tiny_study_file, failing_study_file, tmp_path, capsys
):
    out = tmp_path / "reports"
    status, stdout, _ = run_cli(
        capsys, "reproduce", tiny_study_file, failing_study_file, "--out", out, "--quick"
    )
    assert status == 0
    assert set(summaries(stdout)) == {"tiny", "tiny_wrong"}
    for rel in ("claims.csv", "claims.md", "index.md", "index.html", "tiny/README.md",
                "tiny_wrong/figures/means.png"):  # fmt: skip
        assert (out / rel).is_file(), rel
    assert len(pd.read_parquet(out / "tiny" / "runs.parquet")) == 4 * 4  # quick: 4 replicates
    status, _, _ = run_cli(
        capsys, "reproduce", tiny_study_file, failing_study_file, "--out", out, "--quick",
        "--strict",
    )  # fmt: skip
    assert status == 1


# --------------------------------------------------------------------------- registry


def test_load_study_of_a_file_anywhere_and_by_name(tiny_study_file, tmp_path):
    study = registry.load_study(tiny_study_file)
    assert study.name == "tiny" and study.claims == (1,)
    twin = registry.load_study(str(tiny_study_file))  # loading twice is fine
    assert twin.name == "tiny"
    with pytest.raises(ValueError, match="Unknown study 'nope'"):
        registry.load_study("nope")
    with pytest.raises(TypeError, match="'study' parameter of load_study"):
        registry.load_study(3)
    for name in registry.list_studies():
        assert registry.load_study(name).name  # every built-in study loads


def reproduce_both(capsys, first: Path, second: Path, out: Path):
    """``convstudy reproduce FIRST SECOND --out OUT --quiet``: (status, stdout, stderr)."""
    return run_cli(capsys, "reproduce", first, second, "--out", out, "--quiet")


def test_a_failing_study_does_not_stop_the_others(
    tiny_study_file, failing_study_file, tmp_path, capsys
):
    out = tmp_path / "reports"
    failing_study_file.with_suffix(".fail").write_text("1.0")
    status, stdout, stderr = reproduce_both(capsys, failing_study_file, tiny_study_file, out)
    assert status == 1
    assert set(summaries(stdout)) == {"tiny"}
    assert (out / "tiny" / "README.md").is_file() and (out / "index.html").is_file()
    assert pd.read_csv(out / "claims.csv")["id"].tolist() == ["tiny-mean"]
    assert stderr.splitlines()[-1].startswith("convstudy: 1 of 2 studies failed: tiny_wrong")


def test_study_lines_come_in_study_order_with_their_figures_written(
    tiny_study_file, failing_study_file, tmp_path, capsys
):
    out = tmp_path / "reports"
    status, stdout, _ = reproduce_both(capsys, failing_study_file, tiny_study_file, out)
    assert status == 0  # without --strict a claim not reproduced is a finding
    assert list(summaries(stdout)) == ["tiny_wrong", "tiny"]
    for name in ("tiny_wrong", "tiny"):  # every figure is written when its line is printed
        assert (out / name / "figures" / "means.png").is_file()


def test_a_figure_failing_in_the_background_fails_its_study_only(
    tiny_study_file, failing_study_file, tmp_path, capsys
):
    out = tmp_path / "reports"
    failing_study_file.with_suffix(".figfail").write_text("")
    status, stdout, stderr = reproduce_both(capsys, failing_study_file, tiny_study_file, out)
    assert status == 1 and set(summaries(stdout)) == {"tiny"}
    assert "study 'tiny_wrong' failed" in stderr and "frac" in stderr  # the drawing error
    assert stderr.splitlines()[-1].startswith("convstudy: 1 of 2 studies failed: tiny_wrong")
    assert not (out / ".cache" / "analysis" / "tiny_wrong.key").exists()
    assert (out / ".cache" / "analysis" / "tiny.key").is_file()
    assert (out / "tiny" / "figures" / "means.png").is_file()


def test_a_built_in_study_that_fails_to_import_is_skipped(
    tiny_study_file, tmp_path, monkeypatch, capsys
):
    broken = _bad_files(tmp_path / "bad")["syntax"]
    files = {"tiny": tiny_study_file, "broken": broken}
    real_load = registry.load_study
    monkeypatch.setattr(registry, "list_studies", lambda: sorted(files))
    monkeypatch.setattr(registry, "load_study", lambda name: real_load(files.get(name, name)))
    out = tmp_path / "reports"
    status, stdout, stderr = run_cli(capsys, "reproduce", "--out", out, "--quick", "--quiet")
    assert status == 1
    assert set(summaries(stdout)) == {"tiny"} and (out / "index.html").is_file()
    assert "syntax.py' failed to import: SyntaxError" in stderr
    assert stderr.splitlines()[-1].startswith("convstudy: 1 of 2 studies failed: broken")


def test_claims_on_several_seeds_show_how_many_agree(tiny_study_file, tmp_path, capsys):
    out = tmp_path / "reports"
    status, stdout, _ = run_cli(capsys, "claims", tiny_study_file, "--seeds", "0,1,2", "--out", out)
    assert status == 0, stdout
    claims = pd.read_csv(out / "claims.csv").set_index("id")
    assert claims.loc["tiny-mean", "seeds_agree"] == "3/3"
    assert claims.loc["tiny-mean", "seed_verdicts"] == (
        "0: reproduced; 1: reproduced; 2: reproduced"
    )
    assert "seeds agree 3/3" in (out / "claims.md").read_text()
    assert not (out / "tiny@").exists() and sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        ".cache",
        "tiny",
    ]  # other seeds are cached, not written
    status, _, err = run_cli(capsys, "claims", tiny_study_file, "--seeds", "1,1", "--out", out)
    assert status == 2 and "distinct integers" in err


# --------------------------------------------------------------------------- rough edges


def test_quick_without_out_never_writes_the_full_reports(
    tiny_study_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    status, stdout, _ = run_cli(capsys, "run", tiny_study_file, "--quick", "--replicates", "2")
    assert status == 0 and "-> reports-quick/tiny" in stdout
    assert (tmp_path / "reports-quick" / "tiny" / "study.json").is_file()
    assert not (tmp_path / "reports").exists()


def test_an_unwritable_out_is_one_line_before_any_work(tiny_study_file, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status, stdout, err = run_cli(capsys, "run", tiny_study_file, "--out", blocker / "sub")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "is not writable" in err and "cached" not in err and stdout == ""


def test_a_malformed_user_optimizer_state_is_one_line(tmp_path, capsys):
    study = tmp_path / "bad_state.py"
    study.write_text(
        "import numpy as np\n"
        "from typing import NamedTuple\n"
        "from convstudy.optim import Optimizer, register_optimizer\n"
        "from convstudy.study import Analysis, Study\n"
        "class State(NamedTuple):\n"
        "    count: np.ndarray\n"
        "    m: str\n"
        "register_optimizer('bad_state', lambda: Optimizer('bad_state', {},\n"
        "    lambda w: State(np.zeros(len(w), int), 'oops'), lambda g, w, s, lr: (w, s)))\n"
        "study = Study(name='bad_state', title='t', description='d',\n"
        "    conditions=lambda s: [{'problem': 'quadratic', 'optimizer': 'bad_state',\n"
        "                           'schedule.eta0': 0.1, 'n_steps': 5}],\n"
        "    analyze=lambda runs, s: Analysis())\n"
    )
    from convstudy.optim import OPTIMIZERS

    try:
        status, _, err = run_cli(capsys, "run", study, "--quick", "--out", tmp_path / "o")
    finally:
        OPTIMIZERS.unregister("bad_state")  # the study file registered it in this process
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "state whose field 'm' is str" in err and "AttributeError" not in err


def test_a_condition_diverging_everywhere_warns_and_fails_strict(tmp_path, capsys):
    from _tiny_study import diverging_conditions, diverging_study

    from convstudy.runner import run_study

    study = replace(diverging_study, conditions=lambda s: [
        {**c, "schedule.eta0": 5.0} for c in diverging_conditions(s)[:1]
    ])  # fmt: skip
    result = run_study(study, quick=True, replicates=4, out=None)
    assert len(result.all_diverged) == 1
    assert result.all_diverged[0]["schedule.eta0"] == 5.0
    from convstudy.cli import _summary

    assert "warning: every replicate diverged in 1 condition" in _summary(result)

    study_file = tmp_path / "blowup.py"
    study_file.write_text(
        "from convstudy.study import Analysis, Study\n"
        "study = Study(name='blowup', title='t', description='d', claims=(2,),\n"
        "    conditions=lambda s: [{'problem': 'quadratic', 'schedule.eta0': eta,\n"
        "        'sampler': 'full', 'batch_size': 100, 'problem.n_samples': 100,\n"
        "        'n_steps': 50} for eta in (0.1, 50.0)],\n"
        "    analyze=lambda runs, s: Analysis())\n"
    )
    out = tmp_path / "r"
    status, stdout, _ = run_cli(capsys, "claims", study_file, "--quick", "--out", out)
    assert status == 0 and "every replicate diverged in 1 condition" in stdout
    status, _, err = run_cli(capsys, "claims", study_file, "--quick", "--strict", "--out", out)
    assert status == 1 and "diverged in 1 condition(s) (--strict)" in err


def test_a_warning_of_a_run_is_one_line(tmp_path, capsys):
    study = tmp_path / "warns.py"
    study.write_text(
        "import warnings\n"
        "from convstudy.study import Analysis, Study\n"
        "def analyze(runs, scale):\n"
        "    warnings.warn('the chosen step sits on the edge of its grid')\n"
        "    return Analysis()\n"
        "study = Study(name='warns', title='t', description='d', analyze=analyze,\n"
        "    conditions=lambda s: [{'problem': 'quadratic', 'schedule.eta0': 0.1, 'n_steps': 5}])\n"
    )
    status, _, err = run_cli(capsys, "run", study, "--quick", "--out", tmp_path / "o")
    assert status == 0
    assert err.strip() == "convstudy: warning: the chosen step sits on the edge of its grid"
