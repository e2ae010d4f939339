"""``compare``: tune every method with the same budget, evaluate it on fresh seeds, measure.

The protocol, for each problem p of the testbed and each method m:

1. **Tune.** Every trial (hyper-parameter setting, :func:`convstudy.compare.space.trials`) runs
   ``tune_replicates`` replicates with ``phase = "tune"``. Per trial: the median final metric
   (a diverged replicate counting as +inf) and the median time to target in iterations
   (censored = +inf; with one common budget this is the Kaplan-Meier median).
2. **Select** (``selection``), among trials where no replicate diverged (all trials when every
   one diverged somewhere): ``"time"``, the shortest median time to target, ties (e.g. all
   censored) broken by the lower median final metric; ``"final"``, the lowest median final
   metric. A choice at either end of a method's tried learning rates (>= 3 values) is warned
   about and becomes a caveat: the best step may lie outside the space.
3. **Evaluate.** The chosen setting runs ``replicates`` fresh replicates with
   ``phase = "eval"``, on seeds disjoint from the tuning seeds (other starting points, other
   minibatches): the selection's own luck does not enter what is reported.

**Common random numbers.** Within one problem and phase, every trial of every method draws
from the same seed, the cell parameter ``stream = derived_seed(run seed, "compare", problem,
phase)``: replicate r starts from the same random point and, at equal batch size, sees the same
minibatches whichever method or step size runs. Differences between trials and between methods
are then differences of the methods, not of their luck (a paired design; the statistics in
:mod:`convstudy.compare.measures` do not rely on the pairing, so their CIs stay valid, if
conservative).
4. **Measure** on the evaluation runs (:mod:`convstudy.compare.measures`).

Cells go through the study runner (:func:`convstudy.runner.compute_runs`), so a comparison has
the same cache (resume after an interruption; edit a user optimizer and only its cells rerun),
executors (``--jobs``, Dask) and determinism as a study: a cell's seed is a hash of the run seed
and its parameters; method names, problem names and trial numbers are labels.

Wall-clock: each cell times its own run after a one-step warm-up (which loads or compiles the
kernel) and records ``seconds`` = elapsed x step / n_steps / R, the lockstep batch's time
shared equally among its R replicates. It is the machine's time: other load on the machine
enters it, and a cached cell keeps the time of the run that computed it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validation import check_option, check_scalar
from ..runner import SerialExecutor, compute_runs
from ..stats.estimate import derived_seed
from ..stats.survival import time_to_target
from ..study import (
    Analysis,
    Study,
    build_problem,
    condition_key,
    parameters_of,
    simulate_cell,
)
from ..tuning import at_range_edge
from .space import Method, hyperparameter_key, method_of, space_caveats, trial_budgets, trials
from .testbed import TestbedProblem, resolve_problems

__all__ = [
    "Comparison",
    "compare",
    "compare_cell",
    "SELECTIONS",
    "DEFAULT_BASELINES",
    "trial_table",
    "select_trials",
    "lr_at_edge",
    "edge_choices",
]

SELECTIONS = ["time", "final"]
DEFAULT_BASELINES = ("sgd", "momentum", "nesterov", "adam")
LABELS = ("case", "method", "trial")  # presentation keys of a comparison cell


def compare_cell(condition: dict, seed: int, replicates: Sequence[int]) -> pd.DataFrame:
    """One comparison cell: :func:`~convstudy.study.simulate_cell` on the seed ``stream`` (common
    random numbers, module docstring) with the problem's test observables
    (``problem.observables()`` where it has them) and a ``seconds`` column."""
    condition = dict(condition)
    seed = condition.pop("stream", seed)
    problem = build_problem(condition)
    observe = problem.observables() if hasattr(problem, "observables") else None
    simulate_cell({**condition, "n_steps": 1}, seed, list(replicates)[:1], observe=observe)
    start = time.perf_counter()
    frame = simulate_cell(condition, seed, replicates, observe=observe)
    elapsed = time.perf_counter() - start
    share = elapsed / condition["n_steps"] / len(replicates)
    return frame.assign(seconds=frame["step"].to_numpy(float) * share)


def _no_analysis(runs, scale) -> Analysis:
    return Analysis()


def _run_cells(
    name: str, conditions: list[dict], replicates: int, quick: bool, run: dict
) -> tuple[pd.DataFrame, int, int]:
    """Every condition's runs through the study runner. Conditions equal but for their labels
    (two methods trying the same setting) are computed once and their runs repeated under
    each label set."""
    unique: dict[str, dict] = {}
    for cond in conditions:
        unique.setdefault(condition_key(parameters_of(cond, LABELS)), cond)
    study = Study(
        name=name, title=name, description="cells of a comparison",
        conditions=lambda scale: list(unique.values()), analyze=_no_analysis,
        compute=compare_cell, labels=LABELS, replicates=replicates, quick_replicates=replicates,
    )  # fmt: skip
    runs, n_new, n_old = compute_runs(study, study.scale(quick), **run)
    if len(unique) == len(conditions):
        return runs, n_new, n_old
    by_labels = runs.groupby(list(LABELS), sort=False)
    parts = []
    for cond in conditions:
        first = unique[condition_key(parameters_of(cond, LABELS))]
        cell = by_labels.get_group(tuple(first[k] for k in LABELS))
        parts.append(cell.assign(**{k: cond[k] for k in LABELS}))
    return pd.concat(parts, ignore_index=True), n_new, n_old


def _condition(problem: dict, method: Method, setting: dict, seed: int, phase: str) -> dict:
    """A cell's condition: the problem's keys (:meth:`TestbedProblem.condition`), the phase and
    its seed stream, the method and the trial's hyper-parameters."""
    return {
        **problem,
        "phase": phase,
        "stream": derived_seed(seed, "compare", problem["case"], phase),
        "optimizer": method.optimizer,
        "schedule": method.schedule,
        **{hyperparameter_key(k): v for k, v in setting.items()},
    }


def _tidy(runs: pd.DataFrame, entries: dict[str, TestbedProblem], targets: dict) -> pd.DataFrame:
    """Comparison names first: ``problem`` is the testbed name (the registered problem is kept
    as ``problem_name``), ``objective`` the problem's metric, ``target`` its target."""
    runs = runs.rename(columns={"problem": "problem_name", "case": "problem"})
    metric = runs["problem"].map({k: e.metric for k, e in entries.items()})
    objective = np.where(metric == "subopt", runs.get("subopt", np.nan), runs["loss"])
    runs = runs.assign(
        metric=metric, objective=objective.astype(float), target=runs["problem"].map(targets)
    )
    front = ["problem", "method", "trial", "phase", "replicate", "step", "samples", "objective"]
    return runs[front + [c for c in runs.columns if c not in front]]


def trial_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, method, trial) of tuning runs: its hyper-parameters, ``n``,
    ``n_diverged``, ``median_final`` (diverged = inf) and ``median_iterations`` to target
    (censored = inf)."""
    hp = [c for c in runs.columns if c == "schedule.eta0" or c.startswith("optimizer.")]
    hp += [c for c in runs.columns if c.startswith("schedule.") and c not in hp]
    rows = []
    for (problem, method, trial), cell in runs.groupby(["problem", "method", "trial"], sort=False):
        last = cell[cell["step"] == cell["step"].max()]
        final = np.where(last["diverged"].astype(bool), np.inf, last["objective"].to_numpy(float))
        final = np.where(np.isnan(final), np.inf, final)
        ttt = time_to_target(cell, float(cell["target"].iloc[0]), y="objective")
        times = np.where(ttt["censored"], np.inf, ttt["iterations"].to_numpy(float))
        first = cell.iloc[0]
        rows.append({
            "problem": problem, "method": method, "trial": int(trial),
            **{("lr" if c == "schedule.eta0" else c): first[c] for c in hp if pd.notna(first[c])},
            "n": len(last), "n_diverged": int(last["diverged"].astype(bool).sum()),
            "median_final": float(np.median(final)), "median_iterations": float(np.median(times)),
        })  # fmt: skip
    return pd.DataFrame(rows)


def select_trials(table: pd.DataFrame, selection: str = "time") -> pd.Series:
    """Boolean mask of the chosen trial per (problem, method) of :func:`trial_table` (the rule
    is in the module docstring)."""
    check_option(selection, "selection", "select_trials", SELECTIONS)
    chosen = pd.Series(False, index=table.index)
    order = ["median_iterations", "median_final"] if selection == "time" else ["median_final"]
    for _, group in table.groupby(["problem", "method"], sort=False):
        stable = group[group["n_diverged"] == 0]
        pool = stable if len(stable) else group
        chosen[pool.sort_values(order + ["trial"], kind="stable").index[0]] = True
    return chosen


def lr_at_edge(table: pd.DataFrame, min_size: int = 3) -> pd.Series:
    """Boolean mask of the trials whose lr is the smallest or largest a method tried on a
    problem (:func:`convstudy.tuning.at_range_edge`); none for a method that tried fewer than
    ``min_size`` distinct values, since then every value is an end."""
    if "lr" not in table:
        return pd.Series(False, index=table.index)
    size = table.groupby(["problem", "method"], sort=False)["lr"].transform("nunique")
    return at_range_edge(table, "lr") & (size >= min_size)


def edge_choices(table: pd.DataFrame) -> list[str]:
    """One sentence per chosen learning rate at an end of the method's tried values
    (``table`` of :func:`trial_table` with ``chosen`` and ``at_edge``)."""
    out = []
    for row in table[table["chosen"] & table["at_edge"]].itertuples():
        lrs = table.loc[(table["problem"] == row.problem) & (table["method"] == row.method), "lr"]
        end = "smallest" if row.lr == lrs.min() else "largest"
        out.append(
            f"{row.method} on {row.problem}: the chosen lr = {row.lr:g} is the {end} value tried "
            f"({lrs.min():g} to {lrs.max():g}); the best step may lie outside the search space."
        )
    return out


@dataclass
class Comparison:
    """The result of :func:`compare`: settings, tidy frames and caveats.

    ``trials`` are the tuning runs, ``tuning`` one row per trial (:func:`trial_table`, with
    ``chosen`` and ``at_edge``), ``runs`` the evaluation runs of the chosen settings. The
    measures (:mod:`convstudy.compare.measures`) are in ``tables``.
    """

    problems: list[TestbedProblem]
    methods: list[Method]
    settings: dict
    trials: pd.DataFrame
    tuning: pd.DataFrame
    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    n_computed: int = 0
    n_cached: int = 0
    wall_time: float = 0.0


def _check_methods(methods: list[Method]) -> None:
    names = [m.label for m in methods]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"Two methods are named {repeated}: give each a distinct name "
            "(Method(..., name=...)), or drop the baseline it repeats."
        )


def compare(
    methods: Sequence[Method | str] = (),
    *,
    baselines: Sequence[Method | str] = DEFAULT_BASELINES,
    problems: str | Sequence = "testbed",
    budget: int = 16,
    search: str = "grid",
    selection: str = "time",
    replicates: int | None = None,
    tune_replicates: int | None = None,
    quick: bool = False,
    seed: int = 0,
    allow_unequal_budgets: bool = False,
    executor=None,
    cache_dir=None,
    fresh: bool = False,
    quiet: bool = True,
    chunk_size: int | None = None,
    n_boot: int = 1000,
) -> Comparison:
    """Compare ``methods`` with ``baselines`` on ``problems`` under an equal tuning budget.

    Parameters
    ----------
    methods, baselines : sequence of Method or str
        The methods under study and the ones they are compared with (names resolve through
        :func:`convstudy.compare.space.method_of`; ``"my_module:lion"`` works).
    problems : str or sequence, default "testbed"
        See :func:`convstudy.compare.testbed.resolve_problems`.
    budget : int, default 16
        Tuning trials per method and problem; the same for every method (see
        :func:`~convstudy.compare.space.trial_budgets`; ``allow_unequal_budgets`` runs an
        unequal comparison and reports it).
    search : {"grid", "random"}; selection : {"time", "final"}
        How trials are placed and chosen (module docstring).
    replicates, tune_replicates : int, optional
        R of the evaluation (default 64, quick 16) and of every tuning trial (8, quick 4).
    quick : bool
        Each problem's ``quick_steps`` and the smaller default R.
    seed : int
        Run seed: every cell seed and bootstrap seed derives from it.
    executor, cache_dir, fresh, quiet, chunk_size
        As for :func:`convstudy.runner.compute_runs`.

    Returns a :class:`Comparison`; its ``tables`` hold the measures.
    """
    from .measures import measure

    owner = "compare"
    started = time.perf_counter()
    check_option(search, "search", owner, ["grid", "random"])
    check_option(selection, "selection", owner, SELECTIONS)
    seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
    R = check_scalar(replicates if replicates is not None else (16 if quick else 64),
                     "replicates", owner, kind=int, low=2, closed="left")  # fmt: skip
    R_tune = check_scalar(tune_replicates if tune_replicates is not None else (4 if quick else 8),
                          "tune_replicates", owner, kind=int, low=1, closed="left")  # fmt: skip
    all_methods = [method_of(m) for m in [*methods, *baselines]]
    if len(all_methods) < 2:
        raise ValueError(
            f"compare needs at least two methods (methods and baselines together). Got "
            f"{[m.label for m in all_methods]}."
        )
    _check_methods(all_methods)
    budgets, caveats = trial_budgets(all_methods, budget, allow_unequal=allow_unequal_budgets)
    caveats += space_caveats(all_methods)
    entries = {e.name: e for e in resolve_problems(problems)}
    targets = {name: e.absolute_target() for name, e in entries.items()}
    executor = executor or SerialExecutor()
    run = {"seed": seed, "executor": executor, "cache_dir": cache_dir, "fresh": fresh,
           "quiet": quiet, "chunk_size": chunk_size}  # fmt: skip

    settings = {m.label: trials(m, budgets[m.label], search=search, seed=seed) for m in all_methods}
    problems = {name: {**e.condition(quick), "case": name} for name, e in entries.items()}
    tune_conditions = [
        {**_condition(p, m, s, seed, "tune"), "method": m.label, "trial": i}
        for p in problems.values() for m in all_methods for i, s in enumerate(settings[m.label])
    ]  # fmt: skip
    tune_runs, n_new, n_old = _run_cells("compare-tune", tune_conditions, R_tune, quick, run)
    tune_runs = _tidy(tune_runs, entries, targets)
    table = trial_table(tune_runs)
    table["chosen"] = select_trials(table, selection)
    table["at_edge"] = lr_at_edge(table)
    edges = edge_choices(table)
    for message in edges:
        warnings.warn(message, UserWarning, stacklevel=2)
    caveats += edges

    chosen = table[table["chosen"]]
    eval_conditions = [
        {**_condition(problems[r.problem], m, settings[r.method][r.trial], seed, "eval"),
         "method": r.method, "trial": int(r.trial)}
        for m in all_methods for r in chosen[chosen["method"] == m.label].itertuples()
    ]  # fmt: skip
    runs, n_new2, n_old2 = _run_cells("compare-eval", eval_conditions, R, quick, run)
    runs = _tidy(runs, entries, targets)

    result = Comparison(
        problems=list(entries.values()),
        methods=all_methods,
        settings={
            "budget": budgets,
            "search": search,
            "selection": selection,
            "replicates": R,
            "tune_replicates": R_tune,
            "quick": quick,
            "seed": seed,
            "targets": targets,
            "spaces": {m.label: {k: str(v) for k, v in m.space.items()} for m in all_methods},
            "fixed": {m.label: dict(m.fixed) for m in all_methods},
            "n_boot": n_boot,
        },  # fmt: skip
        trials=tune_runs,
        tuning=table,
        runs=runs,
        caveats=caveats,
        n_computed=n_new + n_new2,
        n_cached=n_old + n_old2,
    )
    measure(result)
    result.wall_time = time.perf_counter() - started
    return result
