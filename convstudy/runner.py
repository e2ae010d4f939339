"""Running a study: tasks, the on-disk cache, executors, progress, and the study's outputs.

A task is one condition x one chunk of replicate ids. Each finished task is written to the cache
(one Parquet file, atomically) as soon as it arrives, so an interrupted run resumes where it
stopped. A cache entry stores its own key (study, condition, seed, replicate ids, library
version) in the Parquet metadata; an entry whose stored key differs, or which cannot be read, is
recomputed, never reused. Failed tasks are never cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import math
import os
import sys
import sysconfig
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from ._cores import available_cores, set_thread_limit
from .claims import Check, checks_frame
from .output import (
    FigureWriter,
    atomic_write,
    atomic_write_text,
    close_figures,
    markdown_table,
    write_figures,
    write_table,
)
from .registry import WorkerContext, enter_context, worker_context
from .report import run_sentence
from .study import (
    Analysis,
    Scale,
    Study,
    cell_seed,
    chunk_replicates,
    condition_key,
    parameters_of,
)

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
_PROVENANCE = b"convstudy_provenance"


@dataclass(frozen=True)
class Task:
    """One unit of work: a condition's parameters and a chunk of replicate ids.

    ``condition`` holds the parameters only (the study's labels removed): the compute function
    never sees a label, so a label cannot change a result.
    """

    study: str
    condition: dict
    seed: int
    replicates: tuple[int, ...]
    code: str = ""
    grid: str = ""

    def key(self) -> str:
        """Canonical JSON of everything the result depends on: the grid, the condition's
        parameters, seed, replicate ids, library version and a fingerprint of the code that
        computes it."""
        return json.dumps(
            {
                "study": self.study,
                "grid": self.grid,
                "condition": json.loads(condition_key(self.condition)),
                "seed": self.seed,
                "replicates": [self.replicates[0], self.replicates[-1], len(self.replicates)],
                "version": __version__,
                "code": self.code,
            },
            sort_keys=True,
        )


# modules of the library that only analyse or present results: editing them must not
# invalidate computed cells
_PRESENTATION = {
    "__main__.py",
    "bench.py",
    "claims.py",
    "cli.py",
    "dask_executor.py",
    "figures.py",
    "loader.py",
    "output.py",
    "registry.py",
    "report.py",
}
_PRESENTATION_FOLDERS = {"catalogue"}  # check specifications: read by analyses only
_LIBRARY_ROOT = Path(__file__).resolve().parent


def _library_sources() -> list[Path]:
    """The library's own source files (not generated kernel modules under ``__pycache__``)."""
    return [
        path
        for path in sorted(_LIBRARY_ROOT.rglob("*.py"))
        if "__pycache__" not in path.relative_to(_LIBRARY_ROOT).parts
    ]


@functools.lru_cache(maxsize=1)
def _library_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in _library_sources():
        folders = set(path.relative_to(_LIBRARY_ROOT).parts[:-1])
        if path.name not in _PRESENTATION and not folders & _PRESENTATION_FOLDERS:
            digest.update(path.relative_to(_LIBRARY_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(str(Path(r).resolve()) for r in roots))


def _user_file(module: ModuleType | None) -> Path | None:
    """The source file of a module that is neither installed nor part of convstudy."""
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py") or not os.path.exists(file):
        return None
    path = Path(file).resolve()
    text = str(path)
    if path.is_relative_to(_LIBRARY_ROOT) or text.startswith(_installed_roots()):
        return None
    return path


def _referenced_modules(namespace: dict) -> set[str]:
    """Modules a namespace refers to: imported modules, and the modules of imported objects."""
    names = set()
    for value in namespace.values():
        if isinstance(value, ModuleType):
            names.add(value.__name__)
        else:
            mod = getattr(value, "__module__", None)
            if isinstance(mod, str):
                names.add(mod)
    return names


def _closure_sources(fn: Callable, module: ModuleType) -> list[str]:
    """Sources of ``fn`` and of every function, class and constant of its own module that it
    reaches by name (transitively): the part of a study file a cell's result depends on."""
    out, seen, todo = [], set(), [fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            out.append(inspect.getsource(obj))
        except (OSError, TypeError):
            out.append(repr(obj))
        codes = [getattr(obj, "__code__", None)]
        if inspect.isclass(obj):
            codes = [getattr(v, "__code__", None) for v in vars(obj).values()]
        names: set[str] = set()
        while codes:
            code = codes.pop()
            if code is None:
                continue
            names.update(code.co_names)
            codes += [c for c in code.co_consts if inspect.iscode(c)]
        for name in sorted(names):
            if name in vars(module):
                text = _stable_repr(vars(module)[name], module, todo)
                if text is not None:
                    out.append(f"{name} = {text}")
    return out


def _stable_repr(value, module: ModuleType, todo: list) -> str | None:
    """A text for a module-level value that is the same in every process (no addresses); the
    module's own functions and classes it holds are queued in ``todo`` for their source."""
    if inspect.isfunction(value) or inspect.isclass(value):
        if getattr(value, "__module__", None) == module.__name__:
            todo.append(value)
        return None
    if isinstance(value, (bool, int, float, str, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return repr([_stable_repr(v, module, todo) for v in value])
    if isinstance(value, (set, frozenset)):
        return repr(sorted(repr(_stable_repr(v, module, todo)) for v in value))
    if isinstance(value, dict):
        items = [(repr(k), _stable_repr(v, module, todo)) for k, v in value.items()]
        return repr(sorted(items))
    return None  # modules, imported objects: covered by the module walk


def code_fingerprint(study: Study, conditions: Sequence[dict] = ()) -> str:
    """Hash of the code a study's cells are computed with, and of nothing else.

    It covers the library's computing modules; the compute functions and what they reach by
    name in their own (study) module, but not the rest of that module, so editing an analysis
    or a figure recomputes nothing; and every user module (neither installed nor part of
    convstudy) the computation imports: the modules of the optimizers, problems, schedules
    and samplers the conditions name (registered names and import paths ``"module:attr"``;
    one defined in the study file itself is hashed by its source, like a compute function) and
    the modules the study module refers to, followed through the modules they import. So an
    edit to a user's optimizer file recomputes its cells. Registrations elsewhere in the
    process change nothing. :func:`cell_fingerprints` gives each condition the hash of its own
    names only.
    """
    return cell_fingerprints(study, [list(conditions)])[0]


def cell_fingerprints(study: Study, groups: Sequence[Sequence[dict]]) -> list[str]:
    """:func:`code_fingerprint` of each group of conditions: the study's shared code (library,
    compute functions, the modules the study refers to) plus the user modules that group's
    conditions name. Planning gives each condition its own group, so editing a user's
    optimizer recomputes the cells that run it and not the baselines beside it."""
    base, shared_files, study_modules = _study_code(study)
    out, memo = [], {}
    for conditions in groups:
        entries, todo = _named_by(conditions)
        key = (tuple(sorted(id(e) for e in entries)), tuple(sorted(todo)))
        if key not in memo:
            digest = base.copy()
            todo |= _hash_functions(entries, study, digest, study_modules)
            files = {**shared_files, **_user_files(todo, study_modules)}
            for name in sorted(files):  # a fixed order: set order varies between processes
                digest.update(name.encode())
                digest.update(files[name].read_bytes())
            memo[key] = digest.hexdigest()[:16]
        out.append(memo[key])
    return out


def _hash_functions(functions, study: Study, digest, study_modules: set[str]) -> set[str]:
    """Hash the sources of ``functions`` defined in a study module (recording that module in
    ``study_modules``); return the names of the other modules they need hashed whole."""
    own = getattr(study.analyze, "__module__", None)  # the study file itself
    todo = set()
    for fn in functions:
        name = getattr(fn, "__module__", "") or ""
        module = sys.modules.get(name)
        if module is None or _user_file(module) is None and not _is_study_module(module):
            todo.add(name)  # a library or installed object: nothing to hash, or a whole file
            continue
        if name != own and not _is_study_module(module):
            todo.add(name)  # a user's own module (an optimizer file): hashed whole below
            continue
        study_modules.add(name)
        for text in _closure_sources(fn, module):
            digest.update(text.encode())
        todo |= _referenced_modules(vars(module))
    return todo


def _study_code(study: Study):
    """(digest of the library and the compute functions, user files they reach, the study
    modules whose computing part is hashed in the digest)."""
    digest = hashlib.sha256(_library_fingerprint().encode())
    computes = study.compute.values() if isinstance(study.compute, Mapping) else [study.compute]
    study_modules: set[str] = set()
    todo = _hash_functions(_functions_in(list(computes)), study, digest, study_modules)
    return digest, _user_files(todo, study_modules), study_modules


def _user_files(todo: set[str], study_modules: set[str]) -> dict[str, Path]:
    """The files of the user modules among ``todo`` and of the user modules they import."""
    files: dict[str, Path] = {}
    seen: set[str] = set()
    todo = set(todo)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        module = sys.modules.get(name)
        path = _user_file(module)
        if path is None or name in study_modules:  # a study's computing part is hashed above
            continue
        files[name] = path
        todo |= _referenced_modules(vars(module))
    return files


def _named_by(conditions: Sequence[dict]) -> tuple[list, set[str]]:
    """What the names in the conditions resolve to: the registered optimizers, problems,
    schedules and samplers they name (objects), and the modules of import paths."""
    from .optim import OPTIMIZERS
    from .problems import PROBLEMS
    from .sampling import SAMPLERS
    from .schedules import SCHEDULES

    registries = (OPTIMIZERS, PROBLEMS, SCHEDULES, SAMPLERS)
    entries, modules = [], set()
    for cond in conditions:
        for value in cond.values():
            if not isinstance(value, str):
                continue
            if ":" in value:
                module = value.split(":", 1)[0]
                _import_quietly(module)  # hashed below only if imported: import it now
                modules.add(module)
            entries += [r.get(value) for r in registries if value in r]
    callables = [e if callable(e) and hasattr(e, "__module__") else type(e) for e in entries]
    return list({id(c): c for c in callables}.values()), modules


def _import_quietly(module: str) -> None:
    """Import ``module`` if it can be (a name that cannot is reported, in one line, by the
    cell that resolves it)."""
    if module not in sys.modules:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 (the computation raises the real error)
            pass


def _functions_in(values: list) -> list:
    """The functions in compute callables, unwrapping ``functools.partial`` (its function and
    every function among its arguments, e.g. the observables of a simulate cell)."""
    out = []
    while values:
        value = values.pop()
        if isinstance(value, functools.partial):
            values += [value.func, *value.args, *value.keywords.values()]
        elif isinstance(value, Mapping):
            values += list(value.values())
        elif isinstance(value, (list, tuple)):
            values += list(value)
        elif callable(getattr(value, "fn", None)):  # an engine Observable
            out.append(value.fn)
        elif callable(value):
            out.append(value)
    return out


def _is_study_module(module: ModuleType) -> bool:
    return module.__name__.startswith("convstudy.studies.")


def cache_path(cache_dir: Path, task: Task) -> Path:
    digest = hashlib.sha256(task.key().encode()).hexdigest()[:24]
    return Path(cache_dir) / task.study / f"{digest}.parquet"


def write_cached(path: Path, task: Task, frame: pd.DataFrame) -> None:
    """Write a task's frame with its key in the Parquet metadata, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    digest = frame_digest(table.to_pandas())  # of the frame exactly as it will be read back
    meta = {**provenance(frame=frame), "cell_seed": task.seed, "replicates": task.replicates}
    table = table.replace_schema_metadata(
        {
            **(table.schema.metadata or {}),
            _KEY: task.key().encode(),
            _DIGEST: digest,
            _PROVENANCE: json.dumps(meta).encode(),
        }
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


class CellRunner:
    """The picklable function an executor maps over tasks: one grid's compute function.

    A worker process is a fresh interpreter: it must put the user's folders on ``sys.path`` and
    replay user registrations (:func:`convstudy.registry.enter_context`) *before* the compute
    function is unpickled, since unpickling may import a user module by name. So the function
    travels as cloudpickle bytes and is loaded after the context is entered.
    """

    def __init__(self, compute: Callable, context: WorkerContext, threads: int | None = None):
        import cloudpickle

        self.context, self.threads = context, threads
        self.payload = cloudpickle.dumps(compute)
        self._compute = compute

    def __getstate__(self) -> dict:
        return {"context": self.context, "payload": self.payload, "threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.context, self.payload, self._compute = state["context"], state["payload"], None
        self.threads = state["threads"]

    def __call__(self, task: Task) -> pd.DataFrame:
        if self._compute is None:  # in a worker process
            import cloudpickle

            enter_context(self.context)
            set_thread_limit(self.threads)  # cells already run in parallel: one thread each
            self._compute = cloudpickle.loads(self.payload)
        return _compute(self._compute, task)


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
    """The cells bar of one study, under the command's bar over studies (on a terminal)."""
    from tqdm.auto import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="cell", disable=disable, leave=False, position=1)


@dataclass
class StudyResult:
    study: Study
    scale: Scale
    seed: int
    runs: pd.DataFrame | dict[str, pd.DataFrame]
    analysis: Analysis
    folder: Path | None
    n_computed: int
    n_cached: int
    wall_time: float
    all_diverged: list[dict] = field(default_factory=list)
    pending: Future | None = None  # figures still being drawn (run_study with a figure_writer)

    def wait(self) -> StudyResult:
        """Block until every output is written (re-raising a figure's error); ``wall_time``
        then covers computing, analysing and writing, figures included."""
        if self.pending is not None:
            self.pending.result()
        return self


def _condition_columns(conditions: list[dict]) -> list[str]:
    cols: list[str] = []
    for cond in conditions:
        cols += [k for k in cond if k not in cols]
    return cols


def plan_tasks(
    study: Study, scale: Scale, *, seed: int | None = None, chunk_size: int | None = None
) -> list[tuple[Task, tuple[str, int]]]:
    """Every task of a study, each with its owner (grid name, index of the condition in it)."""
    seed = scale.seed if seed is None else seed
    grids = study.grids(scale)
    codes = iter(cell_fingerprints(study, [[c] for conds in grids.values() for c in conds]))
    planned = []
    for grid, conds in grids.items():
        for j, cond in enumerate(conds):
            params = parameters_of(cond, study.labels)
            code = next(codes)
            for chunk in chunk_replicates(scale.replicates, chunk_size):
                task = Task(
                    study.name, params, cell_seed(seed, params), tuple(int(r) for r in chunk),
                    code, grid,
                )  # fmt: skip
                planned.append((task, (grid, j)))
    return planned


def compute_runs(
    study: Study,
    scale: Scale,
    *,
    seed: int | None = None,
    executor=None,
    cache_dir: Path | None = None,
    fresh: bool = False,
    quiet: bool = True,
    chunk_size: int | None = None,
) -> tuple[pd.DataFrame | dict[str, pd.DataFrame], int, int]:
    """All cells of a study as tidy frames (grid order, then replicate), with cache counts.

    Returns one frame for a study with a single list of conditions, ``{grid: frame}`` for a
    study with named grids. ``seed`` defaults to ``scale.seed``.
    """
    executor = executor or SerialExecutor()
    grids = study.grids(scale)
    planned = plan_tasks(study, scale, seed=seed, chunk_size=chunk_size)
    tasks = [task for task, _ in planned]
    owners = [owner for _, owner in planned]
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
    context = worker_context()
    threads = None if isinstance(executor, SerialExecutor) else 1
    runners = {grid: CellRunner(study.compute_for(grid), context, threads) for grid in grids}
    with _progress(len(tasks), quiet, study.name) as bar:
        bar.update(n_cached)
        for j, frame in executor.map_unordered(_RunTask(runners), [tasks[i] for i in todo]):
            i = todo[j]
            frames[i] = frame
            if cache_dir is not None:
                write_cached(cache_path(cache_dir, tasks[i]), tasks[i], frame)
            bar.update(1)
    out = {}
    for grid, conds in grids.items():
        columns = _condition_columns(conds)
        parts = []
        for j, cond in enumerate(conds):
            own = [frames[i] for i, o in enumerate(owners) if o == (grid, j)]
            cell = pd.concat(own, ignore_index=True) if len(own) > 1 else own[0]
            parts.append(_attach(cell, cond, columns))
        with warnings.catch_warnings():
            # a condition without a key has None there: pandas 2 still types such a column by
            # the conditions that have it (what we want) and warns that this will change
            warnings.simplefilter("ignore", FutureWarning)
            out[grid] = pd.concat(parts, ignore_index=True)
    runs = out[""] if list(out) == [""] else out
    return runs, len(todo), n_cached


class _RunTask:
    """Dispatch a task to its grid's :class:`CellRunner` (picklable)."""

    def __init__(self, runners: dict[str, CellRunner]):
        self.runners = runners

    def __call__(self, task: Task) -> pd.DataFrame:
        return self.runners[task.grid](task)


def _attach(frame: pd.DataFrame, condition: dict, columns: list[str]) -> pd.DataFrame:
    clash = [c for c in columns if c in frame.columns]
    if clash:
        raise ValueError(
            f"The compute function returned column(s) {clash} that are also condition keys; "
            f"rename them (condition keys become columns of the tidy frame)."
        )
    front = pd.DataFrame(
        {k: _constant_column(condition.get(k), len(frame)) for k in columns}, index=frame.index
    )
    return pd.concat([front, frame], axis=1)


def _constant_column(value, n: int):
    """``value`` for a column of ``n`` rows: a scalar as it is (pandas broadcasts it with the
    dtype a list of copies would get); a list, tuple, dict or array as an object array of ``n``
    references to it (broadcasting would spread its elements)."""
    if isinstance(value, (list, tuple, dict, set)) or np.ndim(value) != 0:
        column = np.empty(n, dtype=object)
        column.fill(value)
        return column
    return value


def write_study(
    result: StudyResult,
    folder: Path,
    formats=("png",),
    figure_jobs: int = 1,
    figure_writer: FigureWriter | None = None,
    then: Callable[[], None] | None = None,
) -> Future | None:
    """Write the runs (Parquet), tables, figures, claims.csv, study.json and README.md, then
    call ``then``.

    Figures are drawn in ``figure_jobs`` processes, in ``formats``; with a ``figure_writer``
    they are handed to it instead, and the returned future is done (and ``then`` called) once
    they are written.
    """
    analysis = result.analysis
    folder.mkdir(parents=True, exist_ok=True)
    for stem, frame in runs_files(result.runs).items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # no pandas blob, no timestamp: the same data and provenance give the same bytes
        table = table.replace_schema_metadata({_PROVENANCE: json.dumps(provenance(result))})
        atomic_write(folder / f"{stem}.parquet", lambda tmp, t=table: pq.write_table(t, tmp))
    for stem, table in analysis.tables.items():
        write_table(table, folder / "tables", stem)
    record = study_record(result)
    record["run"]["figure_formats"] = list(formats)
    write_table(checks_frame(analysis.checks).assign(study=result.study.name), folder, "claims")
    atomic_write_text(folder / "study.json", json.dumps(record, indent=1, allow_nan=False) + "\n")
    atomic_write_text(folder / "README.md", render_study_readme(record))
    if figure_writer is not None:
        return figure_writer.submit(analysis.figures, folder / "figures", formats, then=then)
    write_figures(analysis.figures, folder / "figures", formats, figure_jobs)
    if then is not None:
        then()
    return None


def runs_files(runs: pd.DataFrame | dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """File stem -> frame: ``runs`` for a single grid, ``runs_<grid>`` for each named grid."""
    if isinstance(runs, pd.DataFrame):
        return {"runs": runs}
    return {f"runs_{grid}": frame for grid, frame in runs.items()}


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"convstudy": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["platform"] = platform.platform(terse=True)
    return tuple(out.items())


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of convstudy's source tree (``+dirty`` with uncommitted changes), or None
    when it is not a git checkout (an installed wheel) or git is missing."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        git = ["git", "-C", str(root)]
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=10)
        head = run([*git, "rev-parse", "HEAD"], check=True).stdout.strip()
        dirty = run([*git, "status", "--porcelain", "--", "convstudy"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def software_versions() -> dict[str, str]:
    """Versions of convstudy and of the libraries that compute its numbers, and the platform."""
    return {**dict(_versions()), "convstudy": __version__}


def provenance(result: StudyResult | None = None, frame: pd.DataFrame | None = None) -> dict:
    """Where a Parquet file's numbers come from: software versions and platform, the engines
    that ran, the run seed and size, and the command line (stored in the file's metadata under
    ``convstudy_provenance``; read it with ``pyarrow.parquet.read_schema(path).metadata``)."""
    out = {**software_versions(), "git_revision": git_revision(), "command": " ".join(sys.argv)}
    frames = runs_files(result.runs).values() if result is not None else [frame]
    out["engines"] = sorted(
        {e for f in frames if f is not None and "engine" in f for e in f["engine"].unique()}
    )
    if result is not None:
        out.update(
            study=result.study.name,
            seed=result.seed,
            replicates=result.scale.replicates,
            quick=result.scale.quick,
            variant=result.scale.variant,
        )
    return out


def study_record(result: StudyResult) -> dict:
    """A study's results as data: what ``study.json`` holds and README/index render."""
    study, a, scale = result.study, result.analysis, result.scale
    frames = runs_files(result.runs)
    engines = sorted(
        {e for f in frames.values() if "engine" in f for e in f["engine"].dropna().unique()}
    )
    return {
        "name": study.name,
        "title": study.title,
        "description": study.description,
        "claims": list(study.claims),
        "run": {
            "replicates": scale.replicates,
            "seed": result.seed,
            "quick": scale.quick,
            "variant": scale.variant,
            "conditions": len(study.grid(scale)),
            "rows": {stem: len(frame) for stem, frame in frames.items()},
            "engines": engines,
            "software": software_versions(),
        },
        "design": {grid or "conditions": conds for grid, conds in study.grids(scale).items()},
        "labels": list(study.labels),
        "findings": list(a.findings),
        "caveats": list(a.caveats),
        "figures": [{"stem": s, "caption": a.captions.get(s, s)} for s in a.figures],
        "tables": [{"stem": s, "caption": a.captions.get(s, s)} for s in a.tables],
        "checks": [
            {k: _json_number(v) for k, v in row.items()}
            for row in checks_frame(a.checks).assign(study=study.name).to_dict(orient="records")
        ],
    }


def _json_number(value):
    """A value strict JSON can hold: NaN as null, infinities as the strings 'inf', '-inf'."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, np.generic):
        return _json_number(value.item())
    return value


def _number_from_json(value):
    if value is None:
        return math.nan
    return float(value) if isinstance(value, str) else value


def render_study_readme(record: dict) -> str:
    """A study's README.md, rendered from its :func:`study_record`."""
    run = record["run"]
    lines = [f"# {record['title']}", "", record["description"], "", run_sentence(run), ""]
    if record["findings"]:
        lines += ["## Findings", ""] + [f"- {f}" for f in record["findings"]] + [""]
    checks = pd.DataFrame(record["checks"])
    if len(checks):
        columns = ["id", "quantity", "prediction", "estimate", "ci_low", "ci_high"]
        shown = checks[[*columns, "n_replicates", "verdict", "reason"]]
        lines += ["## Claims checked", "", markdown_table(shown), ""]
        bands = checks[["id", "expected", "rationale", "broken_variant"]]
        lines += [
            "## Acceptance intervals",
            "",
            "Fixed before the runs (`convstudy/catalogue/`): the theory's prediction, the band "
            "around it and why it is that wide, the fit window, and the deliberately broken "
            "variant that must fail each check (`convstudy run "
            f"{record['name']} --variant NAME`).",
            "",
            markdown_table(bands),
            "",
        ]
    if record.get("caveats"):
        lines += ["## Caveats", ""] + [f"- {c}" for c in record["caveats"]] + [""]
    if record.get("design"):
        software = ", ".join(f"{k} {v}" for k, v in run.get("software", {}).items())
        engines = ", ".join(run.get("engines", [])) or "-"
        lines += [
            "## Design",
            "",
            f"Every condition, with every parameter ({run['replicates']} replicates each, run "
            f"seed {run['seed']}; engine: {engines}; {software}). Labels "
            f"({', '.join(record.get('labels', [])) or 'none'}) only name conditions.",
            "",
        ]
        for grid, conds in record["design"].items():
            lines += [f"### {grid}", "", markdown_table(pd.DataFrame(conds)), ""]
    if record["figures"]:
        lines += ["## Figures", ""]
        for fig in record["figures"]:
            stem, cap = fig["stem"], fig["caption"]
            lines += [f"### {stem}", "", cap, "", f"![{cap}](figures/{stem}.png)"]
            lines += [f"([SVG](figures/{stem}.svg))", ""]
    if record["tables"]:
        lines += ["## Tables", ""]
        for tab in record["tables"]:
            stem = tab["stem"]
            lines.append(
                f"- [{stem}](tables/{stem}.md) ([CSV](tables/{stem}.csv)): {tab['caption']}"
            )
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
    variant: str | None = None,
    formats=("png",),
    figure_jobs: int | None = None,
    figure_writer: FigureWriter | None = None,
) -> StudyResult:
    """Compute (or load from cache), analyse and write one study.

    Outputs go to ``out/<study.name>/`` (``out/<study.name>@<variant>/`` for a broken
    variant); the cache to ``cache_dir`` (default ``out/.cache``). ``out=None`` writes nothing
    (and caches nothing unless ``cache_dir`` is given). Figures are written in ``formats``
    (PNG by default; add ``"svg"`` on request), drawn in ``figure_jobs`` processes (default:
    the cores available). When the study's data (its cells' cache keys) and its analysis code
    are both unchanged since the outputs in the folder were written, the analysis and writing
    are skipped and the folder's record is reused (``fresh=True`` redoes them).

    With a ``figure_writer`` the figures are drawn in the background and the call returns
    once everything else is written: ``result.wait()`` blocks until the figures are too (then
    ``result.wall_time`` includes them). The folder counts as complete for reuse only then.
    """
    t0 = time.perf_counter()
    scale = study.scale(quick, replicates, seed, variant)
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
    stem = study.name if variant is None else f"{study.name}@{variant}"
    folder = Path(out) / stem if out is not None else None
    formats = tuple(formats)
    key = analysis_key(study, scale, chunk_size, formats)
    key_file = Path(cache_dir) / "analysis" / f"{stem}.key" if cache_dir is not None else None
    reused = None
    if not fresh and folder is not None and key_file is not None:
        reused = _reusable_analysis(folder, key_file, key)
    analysis = reused if reused is not None else study.analyze(runs, scale)
    result = StudyResult(
        study, scale, seed, runs, analysis, folder, n_computed, n_cached, 0.0,
        all_diverged=conditions_all_diverged(runs, study.grids(scale), study.labels),
    )  # fmt: skip
    if folder is None:
        close_figures(analysis.figures)  # nothing is written: free them now
    if folder is not None and reused is None:
        jobs = available_cores() if figure_jobs is None else figure_jobs
        if key_file is not None and key_file.exists():
            key_file.unlink()  # the outputs are about to change: the old key no longer holds

        def written() -> None:  # every output is in the folder: record its key and the time
            if key_file is not None:
                atomic_write_text(key_file, key)
            result.wall_time = time.perf_counter() - t0

        result.pending = write_study(result, folder, formats, jobs, figure_writer, written)
    if result.pending is None:
        result.wall_time = time.perf_counter() - t0  # computing, analysing and writing
    return result


def analysis_fingerprint(study: Study) -> str:
    """Hash of the code that turns a study's runs into its outputs: every library module
    (presentation included) and the study's analysis, grid and what they reach by name, plus
    the user modules its module refers to."""
    digest = hashlib.sha256()
    for path in _library_sources():
        digest.update(path.relative_to(_LIBRARY_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    module = sys.modules.get(getattr(study.analyze, "__module__", "") or "")
    if module is not None:
        for fn in (study.analyze, study.conditions):
            for text in _closure_sources(fn, module):
                digest.update(text.encode())
        for name in sorted(_referenced_modules(vars(module))):
            path = _user_file(sys.modules.get(name))
            if path is not None and name != module.__name__:
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def analysis_key(study: Study, scale: Scale, chunk_size: int | None, formats) -> str:
    """Everything a study's outputs depend on: its cells (their cache keys: data, seeds and
    computing code), the analysis code, the scale and the figure formats."""
    digest = hashlib.sha256(analysis_fingerprint(study).encode())
    digest.update(json.dumps([scale.quick, scale.replicates, scale.seed, scale.variant]).encode())
    digest.update(json.dumps(list(formats)).encode())
    for task, _ in plan_tasks(study, scale, chunk_size=chunk_size):
        digest.update(task.key().encode())
    return digest.hexdigest()[:24]


def _reusable_analysis(folder: Path, key_file: Path, key: str) -> Analysis | None:
    """The analysis recorded in ``folder/study.json`` when the outputs were written under
    ``key`` (kept in ``key_file``, in the cache) and every file it lists is still there."""
    try:
        if key_file.read_text(encoding="utf-8") != key:
            return None
        record = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run = record.get("run", {})
    files = [f"figures/{f['stem']}.{fmt}" for f in record.get("figures", [])
             for fmt in run.get("figure_formats", ["png"])]  # fmt: skip
    files += [f"tables/{t['stem']}.csv" for t in record.get("tables", [])]
    if not all((folder / f).is_file() for f in [*files, "claims.csv", "README.md"]):
        return None
    fields = {f.name: f for f in dataclasses.fields(Check)}
    checks = [
        Check(
            **{
                k: (_number_from_json(v) if fields[k].type == "float" else v)
                for k, v in row.items()
                if k in fields
            }
        )  # fmt: skip
        for row in record.get("checks", [])
    ]
    return Analysis(findings=record.get("findings", []), checks=checks,
                    caveats=record.get("caveats", []))  # fmt: skip


def conditions_all_diverged(
    runs: pd.DataFrame | dict[str, pd.DataFrame],
    grids: dict[str, list[dict]],
    labels: tuple[str, ...] = (),
) -> list[dict]:
    """The conditions (their parameters, labels left out) in which every replicate diverged: a
    user must hear of them, since their curves are all NaN and every statistic of them is
    missing. A grid's frame holds its conditions' rows in grid order, so the i-th group of
    condition columns (in order of appearance) is the i-th condition."""
    frames = runs if isinstance(runs, dict) else {"": runs}
    out = []
    for grid, conds in grids.items():
        frame = frames.get(grid)
        if frame is None or "diverged" not in frame or not len(conds):
            continue
        which = frame.groupby(_condition_columns(conds), dropna=False, sort=False).ngroup()
        ever = frame["diverged"].groupby([which, frame["replicate"]]).any()
        every = ever.groupby(level=0).all()
        out += [parameters_of(conds[i], labels) for i in every.index[every.to_numpy()]]
    return out
