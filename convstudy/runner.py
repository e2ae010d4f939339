"""Running a study: tasks, the on-disk cache, executors, progress, and the study's outputs.

A task is one condition x one chunk of replicate ids. Each finished task is written to the cache
(one Parquet file, atomically) as soon as it arrives, so an interrupted run resumes where it
stopped. A cache entry stores its own key (study, condition, seed, replicate ids, library
version) in the Parquet metadata; an entry whose stored key differs, or which cannot be read, is
recomputed, never reused. Failed tasks are never cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .claims import checks_frame
from .output import atomic_write, atomic_write_text, markdown_table, write_figure, write_table
from .study import Analysis, Scale, Study, cell_seed, chunk_replicates, condition_key

__all__ = [
    "Task",
    "run_study",
    "StudyResult",
    "SerialExecutor",
    "JoblibExecutor",
    "get_executor",
    "cache_path",
    "read_cached",
    "write_cached",
]

_KEY = b"convstudy_key"
_DIGEST = b"convstudy_sha256"


@dataclass(frozen=True)
class Task:
    """One unit of work: a condition and a chunk of replicate ids."""

    study: str
    condition: dict
    seed: int
    replicates: tuple[int, ...]
    code: str = ""

    def key(self) -> str:
        """Canonical JSON of everything the result depends on: the condition, seed, replicate
        ids, library version and a fingerprint of the code that computes it."""
        return json.dumps(
            {
                "study": self.study,
                "condition": json.loads(condition_key(self.condition)),
                "seed": self.seed,
                "replicates": [self.replicates[0], self.replicates[-1], len(self.replicates)],
                "version": __version__,
                "code": self.code,
            },
            sort_keys=True,
        )


# modules that only present results: editing them must not invalidate computed cells
_PRESENTATION = {
    "__main__.py",
    "bench.py",
    "claims.py",
    "cli.py",
    "dask_executor.py",
    "figures.py",
    "output.py",
    "registry.py",
    "report.py",
}


@functools.lru_cache(maxsize=1)
def _library_fingerprint() -> str:
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.name not in _PRESENTATION:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_fingerprint(study: Study) -> str:
    """Hash of the library's computing modules and of the study's own module source.

    Part of every cache key, so editing a study file or the engine never reuses stale cells.
    """
    digest = hashlib.sha256(_library_fingerprint().encode())
    for fn in (study.conditions, study.compute):
        module = sys.modules.get(getattr(fn, "__module__", ""), None)
        source = getattr(module, "__file__", None)
        if source and os.path.exists(source):
            digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def cache_path(cache_dir: Path, task: Task) -> Path:
    digest = hashlib.sha256(task.key().encode()).hexdigest()[:24]
    return Path(cache_dir) / task.study / f"{digest}.parquet"


def write_cached(path: Path, task: Task, frame: pd.DataFrame) -> None:
    """Write a task's frame with its key in the Parquet metadata, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    digest = frame_digest(table.to_pandas())  # of the frame exactly as it will be read back
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _KEY: task.key().encode(), _DIGEST: digest}
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def frame_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 of a frame's column names, dtypes and values (row order included)."""
    digest = hashlib.sha256(
        json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode()
    )
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest().encode()


def read_cached(path: Path, task: Task) -> pd.DataFrame | None:
    """The cached frame of ``task``, or None when absent, unreadable, corrupt or stale.

    An entry is reused only when its stored key equals the task's key and its stored digest
    equals the digest of the data read back; anything else is recomputed.
    """
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if meta.get(_KEY) != task.key().encode():
            return None
        frame = table.to_pandas()
        if meta.get(_DIGEST) != frame_digest(frame):
            return None
    except Exception:  # any damage (truncation, flipped bits, garbage) means: recompute
        return None
    return frame


def _compute(compute: Callable, task: Task) -> pd.DataFrame:
    """Run one task with single-threaded BLAS: the small products here gain nothing from
    threads, and a fixed thread count keeps floating-point results identical whichever
    executor (serial, processes, Dask) runs the task."""
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1):
            frame = compute(dict(task.condition), task.seed, np.asarray(task.replicates))
    except Exception as exc:
        # keep the class of our validators' errors (bad input stays ValueError/TypeError) and
        # name the culprit condition; ``err.condition`` marks it as a bad-condition error
        kind = next((k for k in (ValueError, TypeError) if isinstance(exc, k)), RuntimeError)
        err = kind(
            f"Study {task.study!r} failed on condition {task.condition} "
            f"(replicates {task.replicates[0]}..{task.replicates[-1]}): {exc}"
        )
        err.condition = task.condition
        raise err from exc
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"The compute function of study {task.study!r} must return a pandas "
            f"DataFrame. Got {type(frame).__name__}."
        )
    return frame


class SerialExecutor:
    """Runs tasks one after another in this process."""

    name = "serial"

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        for i, item in enumerate(items):
            yield i, fn(item)


class JoblibExecutor:
    """Runs tasks on ``n_jobs`` local processes (joblib/loky); results arrive as they finish."""

    name = "joblib"

    def __init__(self, n_jobs: int):
        self.n_jobs = n_jobs

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        from joblib import Parallel, delayed

        def indexed(i, item):
            return i, fn(item)

        yield from Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
            delayed(indexed)(i, item) for i, item in enumerate(items)
        )


def get_executor(jobs: int = 1, scheduler: str | None = None, dask_local: int | None = None):
    """Serial for ``jobs == 1``, joblib processes for ``jobs > 1``, Dask when asked."""
    if scheduler is not None or dask_local is not None:
        from .dask_executor import DaskExecutor

        return DaskExecutor(scheduler=scheduler, n_workers=dask_local)
    return SerialExecutor() if jobs == 1 else JoblibExecutor(jobs)


def _progress(total: int, quiet: bool, desc: str):
    from tqdm.auto import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="cell", disable=disable, leave=False)


@dataclass
class StudyResult:
    study: Study
    scale: Scale
    seed: int
    runs: pd.DataFrame
    analysis: Analysis
    folder: Path | None
    n_computed: int
    n_cached: int
    wall_time: float


def _condition_columns(conditions: list[dict]) -> list[str]:
    cols: list[str] = []
    for cond in conditions:
        cols += [k for k in cond if k not in cols]
    return cols


def compute_runs(
    study: Study,
    scale: Scale,
    *,
    seed: int = 0,
    executor=None,
    cache_dir: Path | None = None,
    fresh: bool = False,
    quiet: bool = True,
    chunk_size: int | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """All cells of a study as one tidy frame (grid order, then replicate), with cache counts."""
    executor = executor or SerialExecutor()
    conditions = study.grid(scale)
    code = code_fingerprint(study)
    tasks = [
        Task(study.name, cond, cell_seed(seed, cond), tuple(int(r) for r in chunk), code)
        for cond in conditions
        for chunk in chunk_replicates(scale.replicates, chunk_size)
    ]
    frames: dict[int, pd.DataFrame] = {}
    todo = []
    for i, task in enumerate(tasks):
        cached = None
        if not fresh and cache_dir is not None:
            cached = read_cached(cache_path(cache_dir, task), task)
        if cached is not None:
            frames[i] = cached
        else:
            todo.append(i)
    n_cached = len(frames)
    compute = study.compute
    with _progress(len(tasks), quiet, study.name) as bar:
        bar.update(n_cached)
        for j, frame in executor.map_unordered(
            lambda t: _compute(compute, t), [tasks[i] for i in todo]
        ):
            i = todo[j]
            frames[i] = frame
            if cache_dir is not None:
                write_cached(cache_path(cache_dir, tasks[i]), tasks[i], frame)
            bar.update(1)
    columns = _condition_columns(conditions)
    parts = []
    for cond in conditions:
        own = [frames[i] for i, t in enumerate(tasks) if t.condition is cond]
        cell = pd.concat(own, ignore_index=True) if len(own) > 1 else own[0]
        parts.append(_attach(cell, cond, columns))
    runs = pd.concat(parts, ignore_index=True)
    return runs, len(todo), n_cached


def _attach(frame: pd.DataFrame, condition: dict, columns: list[str]) -> pd.DataFrame:
    clash = [c for c in columns if c in frame.columns]
    if clash:
        raise ValueError(
            f"The compute function returned column(s) {clash} that are also condition keys; "
            f"rename them (condition keys become columns of the tidy frame)."
        )
    values = {k: condition.get(k) for k in columns}
    front = pd.DataFrame({k: [v] * len(frame) for k, v in values.items()}, index=frame.index)
    return pd.concat([front, frame], axis=1)


def write_study(result: StudyResult, folder: Path) -> None:
    """Write runs.parquet, tables, figures, claims.csv and README.md of one study."""
    study, analysis = result.study, result.analysis
    folder.mkdir(parents=True, exist_ok=True)
    runs = pa.Table.from_pandas(result.runs, preserve_index=False)
    runs = runs.replace_schema_metadata(None)  # no pandas/version blob: identical bytes per data
    atomic_write(folder / "runs.parquet", lambda tmp: pq.write_table(runs, tmp))
    for stem, table in analysis.tables.items():
        write_table(table, folder / "tables", stem)
    for stem, fig in analysis.figures.items():
        write_figure(fig, folder / "figures", stem)
    claims = checks_frame([c for c in analysis.checks])
    if len(claims):
        claims = claims.assign(study=study.name)
    write_table(claims, folder, "claims")
    atomic_write_text(folder / "README.md", study_readme(result))


def study_readme(result: StudyResult) -> str:
    """The study's README: what it checks, the findings, its tables, figures and claims."""
    study, a, scale = result.study, result.analysis, result.scale
    lines = [
        f"# {study.title}",
        "",
        study.description,
        "",
        f"Run: {scale.replicates} replicates per condition, seed {result.seed}"
        f"{', quick (reduced) size' if scale.quick else ''}; "
        f"{len(study.grid(scale))} conditions, {len(result.runs)} rows in `runs.parquet`.",
        "",
    ]
    if a.findings:
        lines += ["## Findings", ""] + [f"- {f}" for f in a.findings] + [""]
    if a.checks:
        claims = checks_frame(a.checks)[
            [
                "id",
                "quantity",
                "expected",
                "estimate",
                "ci_low",
                "ci_high",
                "n_replicates",
                "verdict",
            ]
        ]
        lines += ["## Claims checked", "", markdown_table(claims), ""]
    if a.figures:
        lines += ["## Figures", ""]
        for stem in a.figures:
            cap = a.captions.get(stem, stem)
            lines += [
                f"### {stem}",
                "",
                cap,
                "",
                f"![{cap}](figures/{stem}.png)",
                f"([SVG](figures/{stem}.svg))",
                "",
            ]
    if a.tables:
        lines += ["## Tables", ""]
        for stem in a.tables:
            cap = a.captions.get(stem, stem)
            lines += [f"- [{stem}](tables/{stem}.md) ([CSV](tables/{stem}.csv)): {cap}"]
        lines.append("")
    return "\n".join(lines)


def run_study(
    study: Study,
    *,
    quick: bool = False,
    replicates: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = "reports",
    jobs: int = 1,
    executor=None,
    cache_dir: str | os.PathLike | None = None,
    fresh: bool = False,
    quiet: bool = True,
    chunk_size: int | None = None,
) -> StudyResult:
    """Compute (or load from cache), analyse and write one study.

    Outputs go to ``out/<study.name>/``; the cache to ``cache_dir`` (default ``out/.cache``).
    ``out=None`` writes nothing (and caches nothing unless ``cache_dir`` is given).
    """
    t0 = time.perf_counter()
    scale = study.scale(quick, replicates)
    executor = executor or get_executor(jobs)
    if cache_dir is None and out is not None:
        cache_dir = Path(out) / ".cache"
    runs, n_computed, n_cached = compute_runs(
        study,
        scale,
        seed=seed,
        executor=executor,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        fresh=fresh,
        quiet=quiet,
        chunk_size=chunk_size,
    )
    analysis = study.analyze(runs, scale)
    folder = Path(out) / study.name if out is not None else None
    result = StudyResult(
        study, scale, seed, runs, analysis, folder, n_computed, n_cached, time.perf_counter() - t0
    )
    if folder is not None:
        write_study(result, folder)
    return result
