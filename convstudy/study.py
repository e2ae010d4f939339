"""Studies: a named grid of conditions x replicates, computed into one tidy frame, then analysed.

A study module (``studies/*.py`` or any user file) defines one :class:`Study` named ``study``::

    study = Study(
        name="my_study", title="...", description="...",
        conditions=my_conditions,   # (scale) -> list of condition dicts, or {grid: list}
        analyze=my_analysis,        # (runs, scale) -> Analysis
        compute=simulate_cell,      # (condition, seed, replicate_ids) -> tidy frame (default)
        labels=("method",),         # condition keys that only name things for the reader
    )

A *condition* is a flat dict of JSON scalars. For trajectory studies its keys follow one naming
scheme read by :func:`simulate_cell`: ``problem`` and ``problem.<param>``, ``optimizer`` and
``optimizer.<param>``, ``schedule`` and ``schedule.<param>`` (plus ``schedule.warmup_steps``),
``sampler``, ``batch_size``, ``n_steps``, ``n_records``, ``record``, ``w0``. Each condition becomes
columns of the tidy frame.

**Parameters and labels.** Every key of a condition is a parameter of the computation except the
study's ``labels``: those are presentation (a legend entry, a display name) and enter neither the
cell's seed nor its cache key, so renaming a label changes no number.

**Grids.** A study whose sub-experiments have different designs returns ``{grid name: conditions}``
from ``conditions`` (and may give ``compute`` per grid as a dict); its analysis then receives
``{grid name: runs}``, one tidy frame per grid, instead of one frame padded with NaN.

Determinism: the seed of a condition is a hash of the run seed and the condition's parameters
(not its position in the grid, not its labels), and replicate r of a condition draws from its own
stream (:func:`convstudy.engine.replicate_generators`), so results never depend on the grid's
order, the executor, the number of workers or how replicates are chunked. Statistics that
resample draw their seeds from the run seed too (``scale.seed``, see
:func:`convstudy.stats.estimate.derived_seed`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import check_scalar
from .claims import Check
from .engine import simulate
from .optim import get_optimizer
from .problems import get_problem
from .schedules import get_schedule, warmup

__all__ = [
    "Scale",
    "Study",
    "Analysis",
    "cell_seed",
    "condition_key",
    "simulate_cell",
    "build_problem",
    "split_condition",
    "parameters_of",
    "Variant",
]


@dataclass(frozen=True)
class Scale:
    """How big a run is, which seed it uses, and whether it runs a broken variant.

    ``quick`` shrinks grids and budgets; ``replicates`` is R per condition; ``seed`` is the run
    seed (``--seed``), from which every cell seed and every bootstrap seed is derived;
    ``variant`` names one of the study's deliberately broken :class:`Variant` (None: the real
    study), which an analysis may read (``scale.variant == "no-correction"``).
    """

    quick: bool
    replicates: int
    seed: int = 0
    variant: str | None = None

    def pick(self, full, quick):
        """``quick`` in a quick run, ``full`` otherwise (for budgets and grid axes)."""
        return quick if self.quick else full


@dataclass
class Analysis:
    """What a study's analysis produces.

    ``tables`` and ``figures`` map a file stem to a DataFrame / matplotlib Figure; ``captions``
    maps the same stems to one sentence each; ``findings`` are Markdown sentences whose numbers
    come from the data; ``checks`` are the claims it measured; ``caveats`` name every anomaly in
    the tables a reader must know (Markdown sentences).
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Variant:
    """A deliberately wrong version of a study, to show that its checks can fail.

    ``conditions`` maps each condition to its broken version (e.g. a constant step where the
    study uses 1/k, cyclic order where it uses random order; return the condition unchanged
    where the variant does not apply); an analysis-side variant (a wrong formula for a
    prediction) leaves the conditions alone and reads ``scale.variant``. A check names the
    variant that must turn it into "not reproduced" (``Check.broken_variant``), and the test
    suite runs every variant at quick scale to show it does.
    """

    description: str
    conditions: Callable[[dict], dict] | None = None


@dataclass(frozen=True, kw_only=True)
class Study:
    """A named grid of conditions x replicates, how to compute a cell, and how to analyse it.

    ``conditions(scale)`` returns a list of conditions, or ``{grid: conditions}`` for a study
    with several sub-experiments; ``compute`` is one function or ``{grid: function}``;
    ``analyze(runs, scale)`` receives one tidy frame, or ``{grid: frame}``. ``labels`` names the
    condition keys that are presentation only (no seed, no cache key). ``replicates`` and
    ``quick_replicates`` are the default R in full and quick runs. ``claims`` lists the claim
    numbers the study checks (shown by ``convstudy list``).
    """

    name: str
    title: str
    description: str
    conditions: Callable[[Scale], list[dict] | dict[str, list[dict]]]
    analyze: Callable[[pd.DataFrame | dict[str, pd.DataFrame], Scale], Analysis]
    compute: Callable[[dict, int, np.ndarray], pd.DataFrame] | Mapping[str, Callable] = field(
        default=None  # simulate_cell, set below (defined later in this module)
    )
    labels: tuple[str, ...] = ()
    variants: Mapping[str, Variant] = field(default_factory=dict)
    claims: tuple[int, ...] = ()
    replicates: int = 200
    quick_replicates: int = 20

    def __post_init__(self) -> None:
        if self.compute is None:
            object.__setattr__(self, "compute", simulate_cell)
        if isinstance(self.labels, str) or not all(isinstance(k, str) for k in self.labels):
            raise TypeError(
                f"The 'labels' parameter of Study {self.name!r} must be a tuple of condition "
                f"keys. Got {self.labels!r} instead."
            )
        object.__setattr__(self, "labels", tuple(self.labels))

    def scale(
        self,
        quick: bool = False,
        replicates: int | None = None,
        seed: int = 0,
        variant: str | None = None,
    ) -> Scale:
        default = self.quick_replicates if quick else self.replicates
        r = default if replicates is None else replicates
        if variant is not None and variant not in self.variants:
            shown = ", ".join(repr(v) for v in sorted(self.variants)) or "none"
            raise ValueError(
                f"The 'variant' parameter of study {self.name!r} must name one of its broken "
                f"variants ({shown}). Got {variant!r} instead."
            )
        return Scale(
            quick,
            check_scalar(r, "replicates", self.name, kind=int, low=1, closed="left"),
            check_scalar(seed, "seed", self.name, kind=int, low=0, closed="left"),
            variant,
        )

    def grids(self, scale: Scale) -> dict[str, list[dict]]:
        """``{grid name: conditions}``, validated: flat dicts of JSON scalars, no parameter set
        twice in one grid. A study with one list of conditions has one grid named ``""``."""
        got = self.conditions(scale)
        grids = dict(got) if isinstance(got, Mapping) else {"": list(got)}
        broken = self.variants[scale.variant].conditions if scale.variant else None
        if broken is not None:
            grids = {grid: [broken(dict(c)) for c in conds] for grid, conds in grids.items()}
        for grid, conds in grids.items():
            if not isinstance(grid, str):
                raise TypeError(f"Grid names of study {self.name!r} must be str. Got {grid!r}.")
            seen = set()
            for cond in conds:
                key = condition_key(parameters_of(cond, self.labels), owner=self.name)
                condition_key(cond, owner=self.name)  # labels must be JSON scalars too
                if key in seen:
                    raise ValueError(
                        f"Study {self.name!r} lists condition {cond} twice"
                        f"{f' in grid {grid!r}' if grid else ''} (labels aside)."
                    )
                seen.add(key)
        return grids

    def grid(self, scale: Scale) -> list[dict]:
        """Every condition of every grid, in order."""
        return [c for conds in self.grids(scale).values() for c in conds]

    def compute_for(self, grid: str) -> Callable[[dict, int, np.ndarray], pd.DataFrame]:
        """The compute function of a grid."""
        if isinstance(self.compute, Mapping):
            if grid not in self.compute:
                raise ValueError(
                    f"Study {self.name!r} has no compute function for grid {grid!r}; its "
                    f"compute mapping has {sorted(self.compute)}."
                )
            return self.compute[grid]
        return self.compute


def parameters_of(condition: dict, labels: Iterable[str] = ()) -> dict:
    """The condition without its presentation-only keys (what seeds and cache keys hash)."""
    labels = set(labels)
    return {k: v for k, v in condition.items() if k not in labels}


def condition_key(condition: dict, owner: str = "study") -> str:
    """Canonical JSON of a condition (sorted keys); raises on non-scalar values."""
    if not isinstance(condition, dict) or not condition:
        raise TypeError(f"A condition of {owner} must be a non-empty dict. Got {condition!r}.")
    for k, v in condition.items():
        ok = isinstance(v, (str, bool, int, float, type(None))) and not (
            isinstance(v, float) and not math.isfinite(v)
        )
        if not isinstance(k, str) or not ok:
            raise TypeError(
                f"Condition values of {owner} must be str, int, finite float, bool or None. "
                f"Got {k!r}: {v!r}."
            )
    return json.dumps(condition, sort_keys=True)


def cell_seed(seed: int, condition: dict) -> int:
    """A 63-bit seed from the study seed and the condition's canonical JSON (order-free)."""
    digest = hashlib.sha256(f"{seed}|{condition_key(condition)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def split_condition(condition: dict, prefix: str) -> dict:
    """The ``prefix.<param>`` entries of a condition as keyword arguments."""
    head = prefix + "."
    return {k[len(head) :]: v for k, v in condition.items() if k.startswith(head)}


@functools.lru_cache(maxsize=64)
def _problem_cached(name: str, params_json: str):
    return get_problem(name, **json.loads(params_json))


def build_problem(condition: dict):
    """The problem named by ``condition['problem']`` with its ``problem.*`` parameters.

    Problems are cached per process (building one may involve a high-precision solve).
    """
    params = split_condition(condition, "problem")
    return _problem_cached(condition["problem"], json.dumps(params, sort_keys=True))


def _build_schedule(condition: dict):
    params = split_condition(condition, "schedule")
    warm = params.pop("warmup_steps", None)
    schedule = get_schedule(condition.get("schedule", "constant"), **params)
    return warmup(schedule, warm) if warm else schedule


def simulate_cell(
    condition: dict,
    seed: int,
    replicates: Sequence[int],
    *,
    observe: Mapping | None = None,
    project: bool = False,
) -> pd.DataFrame:
    """Run :func:`convstudy.simulate` for one condition (see the module docstring for keys).

    ``observe`` is passed to the engine (extra recorded columns); ``project=True`` projects
    after every update onto the problem's feasible set (``problem.project``). A study that
    needs them gives ``compute=functools.partial(simulate_cell, observe=...)``.

    ``optimizer.betas`` may be given as ``"0.9,0.999"`` or as ``optimizer.beta1`` and
    ``optimizer.beta2`` (see :func:`convstudy.optim.get_optimizer`); ``step_sizes``/``etas`` for
    RPROP likewise. The frame gains a column ``engine`` saying which path computed it.
    """
    opt_params = split_condition(condition, "optimizer")
    for pair in ("betas", "etas", "step_sizes"):
        if isinstance(opt_params.get(pair), str):
            opt_params[pair] = tuple(float(v) for v in opt_params[pair].split(","))
    problem = build_problem(condition)
    kwargs = {k: condition[k] for k in ("record", "n_records", "w0") if k in condition}
    if project:
        kwargs["project"] = problem.project
    frame = simulate(
        problem,
        get_optimizer(condition.get("optimizer", "sgd"), **opt_params),
        _build_schedule(condition),
        n_steps=condition["n_steps"],
        sampler=condition.get("sampler", "reshuffle"),
        batch_size=condition.get("batch_size", 1),
        replicates=replicates,
        seed=seed,
        observe=observe,
        **kwargs,
    )
    return frame.assign(engine=frame.attrs["engine"])


def chunk_replicates(n_replicates: int, chunk_size: int | None) -> list[np.ndarray]:
    """Replicate ids 0..R-1 split into consecutive chunks (one chunk when chunk_size is None)."""
    ids = np.arange(n_replicates)
    if chunk_size is None or chunk_size >= n_replicates:
        return [ids]
    return [ids[i : i + chunk_size] for i in range(0, n_replicates, chunk_size)]


def attach_condition(frame: pd.DataFrame, condition: dict, order: Iterable[str]) -> pd.DataFrame:
    """Prefix a cell's frame with its condition as columns (in a fixed column order)."""
    frame = frame.copy()
    for key in reversed(list(order)):
        frame.insert(0, key, condition.get(key))
    return frame
