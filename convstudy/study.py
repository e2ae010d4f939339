"""Studies: a named grid of conditions x replicates, computed into one tidy frame, then analysed.

A study module (``studies/*.py`` or any user file) defines one :class:`Study` named ``study``::

    study = Study(
        name="my_study", title="...", description="...",
        conditions=my_conditions,   # (scale) -> list of condition dicts
        compute=simulate_cell,      # (condition, seed, replicate_ids) -> tidy frame
        analyze=my_analysis,        # (runs, scale) -> Analysis
    )

A *condition* is a flat dict of JSON scalars. For trajectory studies its keys follow one naming
scheme read by :func:`simulate_cell`: ``problem`` and ``problem.<param>``, ``optimizer`` and
``optimizer.<param>``, ``schedule`` and ``schedule.<param>`` (plus ``schedule.warmup_steps``),
``sampler``, ``batch_size``, ``n_steps``, ``n_records``, ``record``, ``w0``; other keys are free
labels for the analysis. Each condition becomes columns of the tidy frame.

Determinism: the seed of a condition is a hash of the study seed and the condition (not its
position in the grid), and replicate r of a condition draws from its own stream
(:func:`convstudy.engine.replicate_generators`), so results never depend on the grid's order, the
executor, the number of workers or how replicates are chunked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
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
]


@dataclass(frozen=True)
class Scale:
    """How big a run is: ``quick`` shrinks grids and budgets; ``replicates`` is R per condition."""

    quick: bool
    replicates: int

    def pick(self, full, quick):
        """``quick`` in a quick run, ``full`` otherwise (for budgets and grid axes)."""
        return quick if self.quick else full


@dataclass
class Analysis:
    """What a study's analysis produces.

    ``tables`` and ``figures`` map a file stem to a DataFrame / matplotlib Figure; ``captions``
    maps the same stems to one sentence each; ``findings`` are Markdown sentences whose numbers
    come from the data; ``checks`` are the claims it measured.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Study:
    """A named grid of conditions x replicates, how to compute a cell, and how to analyse it.

    ``replicates`` and ``quick_replicates`` are the default R in full and quick runs.
    ``claims`` lists the DESIGN.md claim numbers the study checks (shown by ``convstudy list``).
    """

    name: str
    title: str
    description: str
    conditions: Callable[[Scale], list[dict]]
    compute: Callable[[dict, int, np.ndarray], pd.DataFrame]
    analyze: Callable[[pd.DataFrame, Scale], Analysis]
    claims: tuple[int, ...] = ()
    replicates: int = 200
    quick_replicates: int = 20

    def scale(self, quick: bool = False, replicates: int | None = None) -> Scale:
        default = self.quick_replicates if quick else self.replicates
        r = default if replicates is None else replicates
        return Scale(
            quick, check_scalar(r, "replicates", self.name, kind=int, low=1, closed="left")
        )

    def grid(self, scale: Scale) -> list[dict]:
        """The study's conditions, validated: flat dicts of JSON scalars, no duplicates."""
        conds = list(self.conditions(scale))
        seen = set()
        for cond in conds:
            key = condition_key(cond, owner=self.name)
            if key in seen:
                raise ValueError(f"Study {self.name!r} lists condition {cond} twice.")
            seen.add(key)
        return conds


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


def simulate_cell(condition: dict, seed: int, replicates: Sequence[int]) -> pd.DataFrame:
    """Run :func:`convstudy.simulate` for one condition (see the module docstring for keys).

    ``optimizer.betas`` may be given as ``"0.9,0.999"`` or as ``optimizer.beta1`` and
    ``optimizer.beta2``; ``step_sizes``/``etas`` for RPROP likewise as comma-separated pairs.
    """
    opt_params = split_condition(condition, "optimizer")
    for pair in ("betas", "etas", "step_sizes"):
        if isinstance(opt_params.get(pair), str):
            opt_params[pair] = tuple(float(v) for v in opt_params[pair].split(","))
    if "beta1" in opt_params or "beta2" in opt_params:
        opt_params["betas"] = (opt_params.pop("beta1", 0.9), opt_params.pop("beta2", 0.999))
    problem = build_problem(condition)
    kwargs = {k: condition[k] for k in ("record", "n_records", "w0") if k in condition}
    return simulate(
        problem,
        get_optimizer(condition.get("optimizer", "sgd"), **opt_params),
        _build_schedule(condition),
        n_steps=condition["n_steps"],
        sampler=condition.get("sampler", "reshuffle"),
        batch_size=condition.get("batch_size", 1),
        replicates=replicates,
        seed=seed,
        **kwargs,
    )


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
