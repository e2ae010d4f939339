"""Interruption and the cache: a run killed at any point (SIGINT, SIGKILL, mid-write) leaves no
corrupt file and resumes to the same bytes; a corrupt or stale cache entry is recomputed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _tiny_study import analyze_tables_only, slow_study, study, tiny_conditions_changed

import convstudy.runner
from convstudy.runner import Task, cache_path, plan_tasks, read_cached, run_study

TESTS = Path(__file__).parent
N_SLOW_TASKS = 3 * 10  # slow_study: 3 conditions x 10 replicates, one task per replicate
quick_study = replace(study, analyze=analyze_tables_only)  # no figures: fast reruns


def tasks_of(s, seed: int = 0, chunk_size: int | None = None, replicates: int | None = None):
    """The tasks the runner makes for study ``s`` (same keys, so same cache paths)."""
    scale = s.scale(False, replicates, seed)
    return [task for task, _ in plan_tasks(s, scale, chunk_size=chunk_size)]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder by relative path, except temporary (``*.tmp``) files.

    A Parquet file is compared by its data and its provenance without the command line (a
    resumed run is started by another command than the reference run)."""
    return {
        str(p.relative_to(folder)): _content(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".tmp"
    }


def _content(path: Path):
    if path.suffix != ".parquet":
        return path.read_bytes()
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"convstudy_provenance"])
    meta.pop("command")
    return table.replace_schema_metadata(None).to_pandas().to_json(), meta


def cache_entries(out: Path, name: str) -> list[Path]:
    return sorted((out / ".cache" / name).glob("*.parquet"))


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def assert_cache_is_sound(out: Path, tasks) -> int:
    """Every cache entry present is readable and valid for its task; returns how many."""
    by_path = {cache_path(out / ".cache", t): t for t in tasks}
    entries = cache_entries(out, tasks[0].study)
    for entry in entries:
        assert entry in by_path, f"unexpected cache file {entry.name}"
        pq.read_table(entry)  # raises on a truncated file
        assert read_cached(entry, by_path[entry]) is not None
    return len(entries)


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory) -> dict[str, bytes]:
    """The uninterrupted run of the slow study (same chunking as the interrupted ones)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_study(slow_study, out=out, chunk_size=1)
    assert result.n_computed == N_SLOW_TASKS
    return snapshot(out / slow_study.name)


def start_cli_run(tmp_path: Path, out: Path) -> subprocess.Popen:
    """``convstudy run <user study file> --chunk-size 1`` in a subprocess."""
    study_file = tmp_path / "slow_user_study.py"
    study_file.write_text("from _tiny_study import slow_study as study  # noqa: F401\n")
    command = [sys.executable, "-m", "convstudy", "run", str(study_file)]
    command += ["--out", str(out), "--chunk-size", "1", "--quiet"]
    return subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_entries(process: subprocess.Popen, out: Path, n: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while len(cache_entries(out, slow_study.name)) < n:
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {n} cache entries after {timeout} s")
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_run_resumes_to_identical_tables(tmp_path, slow_reference, sig):
    out = tmp_path / "reports"
    process = start_cli_run(tmp_path, out)
    wait_for_entries(process, out, 4)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert process.returncode == 130
        assert "interrupted" in stderr and len(stderr.strip().splitlines()) == 1
    else:
        assert process.returncode == -signal.SIGKILL

    tasks = tasks_of(slow_study, chunk_size=1)
    n_done = assert_cache_is_sound(out, tasks)
    assert 4 <= n_done < N_SLOW_TASKS, "the run was not interrupted part-way"
    leftovers = sorted(p.name for p in out.rglob("*.tmp"))
    if sig == signal.SIGINT:  # an interrupted write removes its temporary file
        assert leftovers == []
    assert all(name.startswith(".") for name in leftovers)  # hidden, never named *.parquet
    assert not (out / slow_study.name / "runs.parquet").exists()

    result = run_study(slow_study, out=out, chunk_size=1)
    assert (result.n_cached, result.n_computed) == (n_done, N_SLOW_TASKS - n_done)
    assert snapshot(out / slow_study.name) == slow_reference


KILL_DURING_WRITE = """
import os, signal, sys
from pathlib import Path
import pyarrow.parquet as pq
from _tiny_study import study
from dataclasses import replace
from _tiny_study import analyze_tables_only
from convstudy.runner import run_study

write, calls = pq.write_table, []

def write_then_die(table, where, **kwargs):
    calls.append(str(where))
    write(table, where, **kwargs)
    if {target!r} in Path(str(where)).name and len(calls) >= {after}:
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])  # half of the file is on disk
        os.kill(os.getpid(), signal.SIGKILL)

pq.write_table = write_then_die
run_study(replace(study, analyze=analyze_tables_only), out=sys.argv[1], seed=int(sys.argv[2]),
          chunk_size=2)
"""


def kill_during_write(out: Path, target: str, after: int, seed: int = 0) -> None:
    code = textwrap.dedent(KILL_DURING_WRITE).format(target=target, after=after)
    done = subprocess.run(
        [sys.executable, "-c", code, str(out), str(seed)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_sigkill_during_a_cache_write_leaves_no_corrupt_entry(tmp_path):
    reference = run_study(quick_study, out=tmp_path / "reference", chunk_size=2)
    out = tmp_path / "reports"
    kill_during_write(out, ".parquet", after=3)  # dies writing the third of 9 cache entries
    tasks = tasks_of(quick_study, chunk_size=2)
    assert assert_cache_is_sound(out, tasks) == 2
    assert len(list(out.rglob("*.tmp"))) == 1  # the half-written temporary file
    result = run_study(quick_study, out=out, chunk_size=2)
    assert (result.n_cached, result.n_computed) == (2, 7)
    assert snapshot(out / quick_study.name) == snapshot(reference.folder)


def test_sigkill_while_writing_outputs_keeps_the_previous_complete_files(tmp_path):
    out = tmp_path / "reports"
    run_study(quick_study, out=out, chunk_size=2)
    before = snapshot(out / quick_study.name)
    kill_during_write(out, "runs.parquet", after=1, seed=1)  # another seed: other runs
    assert snapshot(out / quick_study.name) == before  # old and complete, never half-new
    pq.read_table(out / quick_study.name / "runs.parquet")
    assert [p.name[:14] for p in (out / quick_study.name).glob("*.tmp")] == [".runs.parquet."]


def test_keyboard_interrupt_during_a_write_removes_the_temporary_file(tmp_path, monkeypatch):
    write = pq.write_table

    def write_half_then_interrupt(table, where, **kwargs):
        write(table, where, **kwargs)
        Path(where).write_bytes(Path(where).read_bytes()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", write_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_study(quick_study, out=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no entry, no *.tmp


# ---- corrupt and stale cache entries -------------------------------------------------------
@pytest.fixture
def cached_run(tmp_path):
    """A complete run with its cache (3 conditions, one task each) and its files."""
    out = tmp_path / "reports"
    result = run_study(quick_study, out=out)
    assert result.n_computed == 3
    return out, snapshot(out / quick_study.name)


def entry_of(out: Path, condition_index: int) -> tuple[Path, Task]:
    task = tasks_of(quick_study)[condition_index]
    return cache_path(out / ".cache", task), task


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1],
        lambda data: b"",
        lambda data: b"PAR1" + os.urandom(len(data) - 8) + b"PAR1",
        lambda data: b"not a parquet file at all\n" * 20,
    ],
    ids=["truncated-half", "truncated-1-byte", "empty", "random-bytes", "text"],
)
def test_corrupt_entry_is_recomputed(cached_run, damage):
    out, before = cached_run
    path, task = entry_of(out, 1)
    path.write_bytes(damage(path.read_bytes()))
    assert read_cached(path, task) is None
    result = run_study(quick_study, out=out)
    assert (result.n_cached, result.n_computed) == (2, 1)
    assert read_cached(path, task) is not None  # rewritten, valid
    assert snapshot(out / quick_study.name) == before


def test_no_bit_flip_in_an_entry_is_silently_reused(cached_run):
    """Flip one bit at a time through a whole cache entry: reading it must either give back
    exactly the frame that was written or report the entry as unusable (None), never raise
    and never return altered data."""
    out, _ = cached_run
    path, task = entry_of(out, 0)
    original = path.read_bytes()
    good = read_cached(path, task)
    altered, raised = [], []
    for pos in range(0, len(original), 9):
        flipped = bytearray(original)
        flipped[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(flipped))
        try:
            got = read_cached(path, task)
        except Exception as exc:  # noqa: BLE001 - what escapes is the finding
            raised.append((pos, type(exc).__name__))
            continue
        if got is not None and not (got.equals(good) and got.dtypes.equals(good.dtypes)):
            altered.append(pos)
    path.write_bytes(original)
    n = len(range(0, len(original), 9))
    assert not raised, f"{len(raised)} of {n} flips raised from read_cached: {raised[:5]}"
    assert not altered, f"{len(altered)} of {n} flips returned altered data: {altered[:10]}"


def test_entry_of_another_task_is_not_reused(cached_run):
    """A file holding another task's frame (a copied or mixed-up entry) is recomputed."""
    out, before = cached_run
    (path0, _), (path1, task1) = entry_of(out, 0), entry_of(out, 1)
    path1.write_bytes(path0.read_bytes())
    assert read_cached(path1, task1) is None
    result = run_study(quick_study, out=out)
    assert (result.n_cached, result.n_computed) == (2, 1)
    assert snapshot(out / quick_study.name) == before


def test_other_library_version_is_recomputed(cached_run, monkeypatch):
    out, before = cached_run
    monkeypatch.setattr(convstudy.runner, "__version__", "999.0")
    result = run_study(quick_study, out=out)
    assert (result.n_cached, result.n_computed) == (0, 3)
    after = snapshot(out / quick_study.name)
    record = json.loads(after.pop("study.json"))
    assert record["run"]["software"]["convstudy"] == "999.0"  # provenance says which version
    assert b"convstudy 999.0" in after.pop("README.md")
    runs, meta = after.pop("runs.parquet")
    assert meta.pop("convstudy") == "999.0" and runs == before["runs.parquet"][0]
    assert meta == {k: v for k, v in before["runs.parquet"][1].items() if k != "convstudy"}
    kept = {k: v for k, v in before.items() if k not in ("study.json", "README.md", "runs.parquet")}
    assert after == kept
    monkeypatch.undo()
    result = run_study(quick_study, out=out)
    assert (result.n_cached, result.n_computed) == (3, 0)  # the old entries are still valid


def test_entry_stamped_with_another_version_is_not_reused(cached_run, monkeypatch):
    """An entry written under another version and placed where this version looks."""
    out, _ = cached_run
    path, task = entry_of(out, 2)
    monkeypatch.setattr(convstudy.runner, "__version__", "0.0.1-old")
    old_frame = read_cached(cache_path(out / ".cache", task), task)  # key differs now
    assert old_frame is None
    convstudy.runner.write_cached(path, task, pd.read_parquet(path))  # stamped "0.0.1-old"
    monkeypatch.undo()
    assert read_cached(path, task) is None
    result = run_study(quick_study, out=out)
    assert (result.n_cached, result.n_computed) == (2, 1)


def test_changed_condition_is_recomputed_and_others_reused(cached_run):
    """(The grid function lives in the same module: editing a study's module changes every
    key through the runner's code fingerprint.)"""
    out, _ = cached_run
    result = run_study(replace(quick_study, conditions=tiny_conditions_changed), out=out)
    assert (result.n_cached, result.n_computed) == (2, 1)
    momentum = result.runs[result.runs["label"] == "momentum"]
    assert (momentum["optimizer.momentum"] == 0.6).all()


def test_another_seed_or_chunking_never_reads_these_entries(cached_run):
    out, _ = cached_run
    assert run_study(quick_study, out=out, seed=1).n_cached == 0
    assert run_study(quick_study, out=out, chunk_size=4).n_cached == 0


def test_failed_task_is_not_cached(tmp_path):
    def conditions(scale):
        good = quick_study.conditions(scale)[0]
        return [good, {**good, "label": "bad", "schedule.eta0": -0.1}]

    broken = replace(quick_study, conditions=conditions)
    with pytest.raises(Exception, match="eta0"):
        run_study(broken, out=tmp_path)
    good_task, bad_task = tasks_of(broken)
    assert read_cached(cache_path(tmp_path / ".cache", good_task), good_task) is not None
    assert not cache_path(tmp_path / ".cache", bad_task).exists()
    assert len(cache_entries(tmp_path, broken.name)) == 1


def test_edited_study_file_is_recomputed(tiny_study_file, tmp_path):
    """A user edits the code of their study file: no cell computed by the old code is reused."""
    from convstudy.loader import load_study

    out = tmp_path / "reports"
    first = run_study(load_study(tiny_study_file), out=out)
    assert first.n_computed == 4
    assert run_study(load_study(tiny_study_file), out=out).n_cached == 4
    source = tiny_study_file.read_text()
    tiny_study_file.write_text(
        source.replace('g.normal(condition["mu"], 1.0', 'g.normal(condition["mu"], 2.0')
    )
    edited = run_study(load_study(tiny_study_file), out=out)
    assert (edited.n_cached, edited.n_computed) == (0, 4)
    assert not edited.runs["value"].equals(first.runs["value"])


def test_every_parquet_file_carries_its_provenance(cached_run):
    out, _ = cached_run
    files = [out / quick_study.name / "runs.parquet", *cache_entries(out, quick_study.name)]
    assert len(files) == 4
    for path in files:
        meta = json.loads(pq.read_schema(path).metadata[b"convstudy_provenance"])
        assert {"convstudy", "python", "numpy", "numba", "pandas", "platform", "command"} <= set(
            meta
        )
        assert meta["engines"] == ["fast"]
    runs_meta = json.loads(pq.read_schema(files[0]).metadata[b"convstudy_provenance"])
    assert runs_meta["study"] == quick_study.name and runs_meta["seed"] == 0
