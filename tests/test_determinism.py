"""Same seed, same bytes: runs.parquet, tables, figures and README do not depend on the executor
(serial, joblib, Dask), on how replicates are chunked into tasks, or on the state of the cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _tiny_study import analyze_tables_only, study

from convstudy.problems import PROBLEMS, get_problem
from convstudy.runner import JoblibExecutor, SerialExecutor, run_study

#: the tiny study without its figure, for the many reruns (a figure costs more than the runs)
tables_only = replace(study, analyze=analyze_tables_only)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a study's report folder, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def run_snapshot(out: Path, the_study=tables_only, **kwargs) -> tuple[dict[str, bytes], object]:
    kwargs.setdefault("executor", SerialExecutor())
    result = run_study(the_study, out=out, **kwargs)
    return snapshot(out / the_study.name), result


def assert_same_files(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(want)
    differ = [name for name in want if got[name] != want[name]]
    assert not differ, f"files differ: {differ}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The serial, uncached, unchunked run (tables only)."""
    files, result = run_snapshot(tmp_path_factory.mktemp("reference"), fresh=True)
    assert (result.n_computed, result.n_cached) == (3, 0)
    assert {"runs.parquet", "tables/final.csv", "tables/final.md", "README.md"} <= set(files)
    return files


@pytest.fixture(scope="module")
def reference_with_figures(tmp_path_factory):
    """The serial, uncached, unchunked run with its figure (PNG and SVG)."""
    files, _ = run_snapshot(tmp_path_factory.mktemp("figures"), study, fresh=True)
    assert {"figures/curves.png", "tables/curves.csv", "study.json"} <= set(files)
    return files


@pytest.mark.parametrize("chunk_size", [1, 4])  # 6 replicates: 6 chunks of 1; 4 + 2
def test_chunking_gives_identical_files(reference, tmp_path, chunk_size):
    files, result = run_snapshot(tmp_path, chunk_size=chunk_size)
    assert result.n_computed == 3 * -(-6 // chunk_size)
    assert_same_files(files, reference)


def test_joblib_gives_identical_files_and_a_cache_serial_reads(reference, tmp_path):
    files, result = run_snapshot(tmp_path, executor=JoblibExecutor(2), chunk_size=2)
    assert result.n_computed == 9
    assert_same_files(files, reference)
    files, result = run_snapshot(tmp_path, chunk_size=2)  # serial, from joblib's cache
    assert (result.n_computed, result.n_cached) == (0, 9)
    assert_same_files(files, reference)


def test_dask_gives_identical_files(reference_with_figures, tmp_path):
    pytest.importorskip("distributed")
    from convstudy.dask_executor import DaskExecutor

    with DaskExecutor(n_workers=2) as executor:
        files, result = run_snapshot(tmp_path, study, executor=executor, chunk_size=4)
    assert result.n_computed == 6
    assert_same_files(files, reference_with_figures)


def test_resumed_partial_and_fresh_runs_give_identical_files(reference_with_figures, tmp_path):
    first, result = run_snapshot(tmp_path, study, chunk_size=2)
    assert result.n_computed == 9
    assert_same_files(first, reference_with_figures)
    resumed, result = run_snapshot(tmp_path, study, chunk_size=2)
    assert (result.n_computed, result.n_cached) == (0, 9)
    assert_same_files(resumed, reference_with_figures)

    entries = sorted((tmp_path / ".cache").rglob("*.parquet"))
    assert len(entries) == 9
    for entry in entries[::2]:  # forget 5 of the 9 cells
        entry.unlink()
    partial, result = run_snapshot(tmp_path, study, chunk_size=2)
    assert (result.n_computed, result.n_cached) == (5, 4)
    assert_same_files(partial, reference_with_figures)

    fresh, result = run_snapshot(tmp_path, study, chunk_size=2, fresh=True)
    assert (result.n_computed, result.n_cached) == (9, 0)
    assert_same_files(fresh, reference_with_figures)


def test_grid_order_does_not_change_a_condition_s_runs():
    forward = run_study(tables_only, out=None).runs
    backward = run_study(
        replace(tables_only, conditions=lambda scale: study.conditions(scale)[::-1]), out=None
    ).runs
    key = ["label", "replicate", "step"]
    pd.testing.assert_frame_equal(
        forward.sort_values(key, ignore_index=True),
        backward[forward.columns].sort_values(key, ignore_index=True),
        check_exact=True,
    )


def test_replicate_does_not_depend_on_how_many_run_beside_it():
    six = run_study(tables_only, out=None).runs
    three = run_study(tables_only, out=None, replicates=3).runs
    pd.testing.assert_frame_equal(
        six[six["replicate"] < 3].reset_index(drop=True), three, check_exact=True
    )


def test_another_seed_gives_other_runs(reference, tmp_path):
    files, _ = run_snapshot(tmp_path, seed=1)
    assert files["runs.parquet"] != reference["runs.parquet"]
    assert files["tables/final.csv"] != reference["tables/final.csv"]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_rows_do_not_depend_on_the_other_replicates(name):
    """Row r of loss/grad/batch_grad is bit-identical whether w holds 1, 3 or 7 replicates.

    Otherwise recorded losses (and full-batch trajectories) change with the chunk size: a BLAS
    product ``w @ X.T`` sums in an order that depends on the number of rows of ``w``.
    """
    problem = get_problem(name)
    rng = np.random.default_rng(0)
    w = problem.initial_point() + 0.1 * rng.standard_normal((7, problem.dim))
    idx = rng.integers(0, problem.n_samples, size=(7, 5))
    methods = {
        "loss": lambda w, i: problem.loss(w),
        "grad": lambda w, i: problem.grad(w),
        "batch_grad": problem.batch_grad,
        "sample_losses": problem.sample_losses,
    }
    depends = []
    for method, f in methods.items():
        together = f(w, idx)
        for size in (1, 3):
            apart = np.concatenate(
                [f(w[r : r + size], idx[r : r + size]) for r in range(0, 7, size)]
            )
            if not np.array_equal(together, apart):
                depends.append(f"{method} (chunks of {size})")
    assert not depends, f"{name}: rows depend on the other replicates in {depends}"
