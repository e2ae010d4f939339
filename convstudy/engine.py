"""The lockstep multi-seed engine.

``simulate`` runs R replicates of one optimizer on one problem in lockstep, vectorised over
replicates: parameters are an (R, d) array and every update rule acts on whole arrays.

Randomness: replicate r draws its minibatches (and, with ``w0="random"``, its starting point)
from its own generator, ``SeedSequence(seed, spawn_key=(r,))`` spawned into a sampling stream and
an initialisation stream. That is exactly ``SeedSequence(seed).spawn(R)[r]``, so replicate r's
trajectory is the same whether it runs alone, among 1000, or in any chunk of replicates.

Engines: the numpy path below works for any problem and optimizer; the compiled fast path
(:mod:`convstudy._fast`, numba kernels parallel over replicates, generated from each update
rule's one definition) runs the built-in model families (least squares, logistic, tanh networks)
with every optimizer built from a :class:`convstudy.optim.Rule` (built-in or a user's), from the
same random streams, and gives the same trajectories to rounding.
``engine="auto"`` picks the fast path when it can.

Divergence: after every update a replicate whose parameters or gradient are non-finite is marked
diverged and frozen (its parameters and optimizer state stop changing); at every recorded step a
replicate whose suboptimality exceeds ``divergence_bound`` is marked diverged too. Recorded values
of a diverged replicate are NaN with ``diverged=True``; the other replicates go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ._validation import check_array, check_option, check_scalar
from .optim import Optimizer, get_optimizer
from .problems.base import Problem
from .sampling import Sampler, batch_stream, check_batch_size, get_sampler
from .schedules import Schedule, constant

__all__ = [
    "simulate",
    "Stepper",
    "Observable",
    "record_steps",
    "replicate_generators",
    "fast_path_reason",
    "COLUMNS",
    "ENGINES",
]

COLUMNS = ["replicate", "step", "samples", "loss", "subopt", "grad_norm_sq", "diverged"]


def _stream(seed: int, replicate: int, child: int) -> np.random.Generator:
    # SeedSequence(seed, spawn_key=(r,)).spawn(2)[child] is SeedSequence(seed, spawn_key=(r, child))
    ss = np.random.SeedSequence(seed, spawn_key=(int(replicate), child))
    return np.random.Generator(np.random.PCG64(ss))


def replicate_generators(seed: int, replicates: Iterable[int]) -> tuple[list, list]:
    """(sampling, initialisation) generators of each replicate, from one seed.

    Replicate r uses ``SeedSequence(seed, spawn_key=(r,))``, identical to the r-th child of
    ``SeedSequence(seed).spawn(...)``; its two children (spawn keys (r, 0) and (r, 1)) seed the
    sampling and init streams.
    """
    ids = [int(r) for r in replicates]
    return [_stream(seed, r, 0) for r in ids], [_stream(seed, r, 1) for r in ids]


def record_steps(
    n_steps: int, record: str | Iterable[int] = "log", n_records: int = 60
) -> np.ndarray:
    """The update counts at which the engine records, always including 0 and ``n_steps``.

    ``"log"``: about ``n_records`` integers log-spaced over [1, n_steps] plus 0 (duplicates
    removed, so small runs record every step); ``"all"``: every step; or explicit steps.
    """
    owner = "record_steps"
    if isinstance(record, str):
        if record == "all":
            return np.arange(n_steps + 1)
        if record != "log":
            raise ValueError(
                f"The 'record' parameter of simulate must be 'log', 'all' or a list of steps. "
                f"Got {record!r} instead."
            )
        n_records = check_scalar(n_records, "n_records", owner, kind=int, low=2, closed="left")
        grid = np.unique(np.round(np.geomspace(1, max(n_steps, 1), n_records)).astype(np.int64))
        return np.unique(np.concatenate([[0], grid[grid <= n_steps], [n_steps]]))
    steps = check_array(record, "record", "simulate", ndim=1, dtype=np.int64)
    if steps.size == 0 or steps.min() < 0 or steps.max() > n_steps:
        raise ValueError(
            f"The 'record' parameter of simulate must list steps in [0, n_steps={n_steps}]. "
            f"Got {steps.tolist()[:10]} instead."
        )
    return np.unique(steps)


def _initial_points(problem: Problem, w0, init_rngs: list, n_rep: int) -> np.ndarray:
    if w0 is None:
        return np.tile(problem.initial_point(), (n_rep, 1))
    if isinstance(w0, str):
        if w0 != "random":
            raise ValueError(
                f"The 'w0' parameter of simulate must be None, 'random' or an array of shape "
                f"(d,) or (R, d). Got {w0!r} instead."
            )
        return np.stack([problem.random_initial_point(rng) for rng in init_rngs])
    w0 = check_array(w0, "w0", "simulate", ndim=(1, 2))
    if w0.ndim == 1:
        w0 = check_array(w0, "w0", "simulate", shape=(problem.dim,))
        return np.tile(w0, (n_rep, 1))
    return check_array(w0, "w0", "simulate", shape=(n_rep, problem.dim)).copy()


_RECORD_CHUNK = 1024  # replicates evaluated together when recording (bounds the temporaries)


def _loss_and_grad_norm_sq(problem: Problem, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(w_r) and ||grad f(w_r)||^2 of every replicate, evaluated in chunks of replicates.

    The full loss and gradient build (R, N) temporaries; chunking keeps them at
    ``_RECORD_CHUNK`` x N. Problems compute each replicate's row independently of the others
    (see ``problems.base.rowwise_matmul``), so chunking does not change any value.
    """
    losses, norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for lo in range(0, w.shape[0], _RECORD_CHUNK):
            part = w[lo : lo + _RECORD_CHUNK]
            losses.append(problem.loss(part))
            g = problem.grad(part)
            norms.append(np.einsum("rd,rd->r", g, g))
    return np.concatenate(losses), np.concatenate(norms)


def _check_problem_outputs(problem: Problem, w: np.ndarray) -> None:
    """Evaluate a user problem's methods once on the starting points and check their shapes.

    Built-in problems are tested elsewhere and skipped. A wrong shape would otherwise surface
    later as an obscure broadcasting error, or silently (``loss`` averages whatever
    ``sample_losses`` returns), so it is refused here with the class and method named.
    """
    if type(problem).__module__.startswith("convstudy.problems"):
        return
    n_rep, d = w.shape
    b = min(2, problem.n_samples)
    idx = np.broadcast_to(np.arange(b), (n_rep, b))
    expected = {
        "sample_losses": ((n_rep, b), lambda: problem.sample_losses(w, idx)),
        "sample_grads": ((n_rep, b, d), lambda: problem.sample_grads(w, idx)),
        "batch_grad": ((n_rep, d), lambda: problem.batch_grad(w, idx)),
        "loss": ((n_rep,), lambda: problem.loss(w)),
        "grad": ((n_rep, d), lambda: problem.grad(w)),
    }
    with np.errstate(all="ignore"):
        for method, (shape, evaluate) in expected.items():
            got = np.shape(evaluate())
            if got != shape:
                raise ValueError(
                    f"The 'problem' parameter of simulate is a {type(problem).__name__} whose "
                    f"{method} returned shape {got}; expected {shape} for w of shape "
                    f"{(n_rep, d)} and {b} sample(s) per replicate."
                )


def _resolve(optimizer, schedule, sampler) -> tuple[Optimizer, Schedule, Sampler]:
    if isinstance(optimizer, str):
        optimizer = get_optimizer(optimizer)
    elif not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"The 'optimizer' parameter of simulate must be an Optimizer or a name. "
            f"Got {optimizer!r} instead."
        )
    if not isinstance(schedule, Schedule):
        if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
            if not (np.isfinite(schedule) and schedule > 0):
                raise ValueError(
                    f"The 'schedule' parameter of simulate must be a Schedule or a positive "
                    f"float (a constant step). Got {schedule!r} instead."
                )
            schedule = constant(schedule)
        else:
            raise TypeError(
                f"The 'schedule' parameter of simulate must be a Schedule or a positive float "
                f"(a constant step). Got {schedule!r} instead."
            )
    return optimizer, schedule, get_sampler(sampler)


ENGINES = ("auto", "numpy", "fast")


class Stepper(Protocol):
    """What the engine needs of a path that advances replicates (numpy or compiled).

    ``w`` is the (R, d) array of current parameters. ``advance(k_from, k_to, active)`` runs
    updates ``k_from .. k_to - 1`` of every replicate whose ``active`` entry is True and clears
    the entry of a replicate whose gradient or parameters become non-finite (it is then frozen).
    ``loss_and_grad_norm_sq()`` gives f(w_r) and ||grad f(w_r)||^2 over all N samples for the
    records. ``close()`` releases buffers.
    """

    w: np.ndarray

    def advance(self, k_from: int, k_to: int, active: np.ndarray) -> None: ...

    def loss_and_grad_norm_sq(self) -> tuple[np.ndarray, np.ndarray]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Observable:
    """A quantity recorded at every record step, as a column of the tidy frame.

    ``fn(w)`` maps the (R, d) parameters to R values. With ``previous=True`` it is called as
    ``fn(w, w_previous)`` with the parameters one update earlier too (e.g. the squared norm of
    the last update, ``np.sum((w - w_previous) ** 2, axis=1)``); the engine then stops one
    update before each record step to keep them. A plain callable in ``simulate(observe=...)``
    means ``Observable(fn)``.
    """

    fn: Callable[..., np.ndarray]
    previous: bool = False


def _observables(observe) -> dict[str, Observable]:
    if observe is None:
        return {}
    if not isinstance(observe, Mapping):
        raise TypeError(
            "The 'observe' parameter of simulate must be a mapping from column names to "
            f"callables w -> (R,) values (or Observable). Got {type(observe).__name__} instead."
        )
    out = {}
    for name, obs in observe.items():
        if not isinstance(name, str) or name in COLUMNS:
            raise ValueError(
                f"The 'observe' parameter of simulate has a column name {name!r}; names must be "
                f"strings other than the engine's own columns {COLUMNS}."
            )
        if callable(obs) and not isinstance(obs, Observable):
            obs = Observable(obs)
        if not isinstance(obs, Observable) or not callable(obs.fn):
            raise TypeError(
                f"The 'observe' parameter of simulate maps {name!r} to {obs!r}; expected a "
                "callable w -> (R,) values or an Observable."
            )
        out[name] = obs
    return out


def _observe(observables: dict[str, Observable], w, w_previous, active, n_rep) -> dict:
    values = {}
    for name, obs in observables.items():
        with np.errstate(all="ignore"):
            got = obs.fn(w, w_previous) if obs.previous else obs.fn(w)
        got = np.asarray(got, dtype=float)
        if got.shape != (n_rep,):
            raise ValueError(
                f"The observable {name!r} of simulate returned shape {got.shape}; expected "
                f"({n_rep},), one value per replicate."
            )
        values[name] = np.where(active, got, np.nan)
    return values


def check_state(optimizer: Optimizer, state, n_rep: int, where: str) -> None:
    """Refuse, in one line, an optimizer state the engine cannot mask per replicate: it must be
    a tuple (a NamedTuple) of numpy arrays whose first axis has length R."""
    fields = getattr(state, "_fields", None) or [str(i) for i in range(len(state))]
    if not isinstance(state, tuple):
        raise TypeError(
            f"The optimizer {optimizer.name!r} returned from {where} a state of type "
            f"{type(state).__name__}; it must be a tuple (e.g. a NamedTuple) of numpy arrays."
        )
    for name, value in zip(fields, state):
        shape = getattr(value, "shape", None)
        if not isinstance(value, np.ndarray) or not shape or shape[0] != n_rep:
            got = f"shape {shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(
                f"The optimizer {optimizer.name!r} returned from {where} a state whose field "
                f"{name!r} is {got}; every field must be a numpy array whose first axis has one "
                f"entry per replicate ({n_rep})."
            )


class _NumpyStepper:
    """The reference path: one vectorised numpy update of all replicates per Python iteration.

    Works for any :class:`Problem` and :class:`Optimizer`. Minibatches come from
    :func:`batch_stream`; an update that makes a replicate's gradient or parameters non-finite
    is discarded for that replicate and the replicate is frozen (``active`` cleared).
    """

    def __init__(
        self, problem, optimizer, sampler, batch_size, w, state, etas, sample_rngs, project=None
    ):
        self.problem, self.optimizer, self.etas = problem, optimizer, etas
        self.project = project
        self.w, self.state = w, state
        self.full = sampler.name == "full"
        self.blocks = (
            None if self.full else batch_stream(sampler, sample_rngs, problem.n_samples, batch_size)
        )
        self.block, self.pos = None, 0

    def advance(self, k_from: int, k_to: int, active: np.ndarray) -> None:
        """Run updates k_from .. k_to - 1; clears ``active`` for replicates that blow up."""
        problem, optimizer = self.problem, self.optimizer
        w, state = self.w, self.state
        for k in range(k_from, k_to):
            if self.full:
                g = problem.grad(w)
            else:
                if self.block is None or self.pos == self.block.shape[0]:
                    self.block, self.pos = next(self.blocks), 0
                g = problem.batch_grad(w, self.block[self.pos])
                self.pos += 1
            w_new, state_new = optimizer.update(g, w, state, float(self.etas[k]))
            if k == 0:
                check_state(optimizer, state_new, w.shape[0], "update")
            if self.project is not None:
                w_new = self.project(w_new)
            ok = active & np.isfinite(w_new).all(axis=1) & np.isfinite(g).all(axis=1)
            active[:] = ok
            w = np.where(ok[:, None], w_new, w)
            state = type(state)(
                *(
                    np.where(ok.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
                    for new, old in zip(state_new, state)
                )
            )
        self.w, self.state = w, state

    def loss_and_grad_norm_sq(self) -> tuple[np.ndarray, np.ndarray]:
        """f(w_r) and ||grad f(w_r)||^2 of every replicate (the problem's own methods)."""
        return _loss_and_grad_norm_sq(self.problem, self.w)

    def close(self) -> None:
        self.blocks = None


def fast_path_reason(problem: Problem, optimizer: Optimizer | str, sampler: Sampler | str):
    """Why the compiled fast path cannot run this combination, or ``None`` if it can."""
    if isinstance(optimizer, str):
        optimizer = get_optimizer(optimizer)
    try:
        from ._fast import unsupported_reason
    except ImportError as exc:  # numba missing or broken
        return f"the compiled kernels cannot be imported ({exc})"
    return unsupported_reason(problem, optimizer, get_sampler(sampler))


def _choose_engine(engine: str, problem, optimizer, sampler, project) -> str:
    """'fast' or 'numpy' for engine='auto'|'numpy'|'fast' (refusing 'fast' when unsupported)."""
    if engine == "numpy":
        return "numpy"
    if project is not None:
        reason = "a projection (project=...) runs on the numpy path"
    else:
        reason = fast_path_reason(problem, optimizer, sampler)
    if reason is None:
        return "fast"
    if engine == "fast":
        raise ValueError(
            f"The 'engine' parameter of simulate is 'fast' but the fast path cannot run this "
            f"simulation: {reason}. Use engine='numpy' or 'auto'."
        )
    return "numpy"


def simulate(
    problem: Problem,
    optimizer: Optimizer | str,
    schedule: Schedule | float,
    *,
    n_steps: int,
    sampler: Sampler | str = "reshuffle",
    batch_size: int = 1,
    n_replicates: int = 1,
    replicates: Iterable[int] | None = None,
    seed: int = 0,
    record: str | Iterable[int] = "log",
    n_records: int = 60,
    w0=None,
    divergence_bound: float | None = None,
    record_iterates: bool = False,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
    observe: Mapping[str, Callable | Observable] | None = None,
    engine: str = "auto",
) -> pd.DataFrame:
    """Run replicates of ``optimizer`` with step sizes ``schedule`` on ``problem`` in lockstep.

    Parameters
    ----------
    problem : Problem
        The finite-sum objective.
    optimizer : Optimizer or str
        An update rule from :mod:`convstudy.optim` (or its name, with default hyper-parameters).
    schedule : Schedule or float
        Step sizes eta_k, k = 0, 1, ... (a float means a constant step).
    n_steps : int
        Number of updates K.
    sampler : {"reshuffle", "replacement", "cyclic", "full"} or Sampler
        How minibatches are drawn (``"full"`` requires ``batch_size == N``).
    batch_size : int
        b in [1, N]: b = 1 is SGD, b = N with ``sampler="full"`` is batch gradient descent.
    n_replicates : int
        R, the number of independent replicates (ids 0..R-1), unless ``replicates`` is given.
    replicates : iterable of int, optional
        Explicit replicate ids to run (for chunking a large R); results for an id never depend
        on the other ids run beside it.
    seed : int
        Root seed of every replicate's random streams.
    record : "log", "all" or iterable of int
        Steps at which full loss, suboptimality and squared gradient norm are recorded.
    n_records : int
        Approximate number of log-spaced records with ``record="log"``.
    w0 : None, "random", array (d,) or (R, d)
        Starting point(s): the problem's default, a random draw per replicate, or given.
    divergence_bound : float, optional
        A replicate whose f(w) - f* (or f(w) - f(w0) when f* is unknown) exceeds it is
        marked diverged. Default: 1e6 * max(f(w0) - f*, 1) per replicate.
    record_iterates : bool
        Also record the parameters as columns ``w_0 .. w_{d-1}`` (for trajectory plots).
    project : callable (R, d) -> (R, d), optional
        Applied to the parameters after every update: projected (stochastic) gradient methods
        on a constrained problem, ``w_{k+1} = Proj(update(g_k, w_k))`` (e.g. the box [-1, 1] of
        Reddi et al.'s counterexample, ``project=problem.project``). Runs on the numpy path.
    observe : mapping of column name -> callable or Observable, optional
        Quantities recorded at every record step as extra columns (NaN for a diverged
        replicate): ``fn(w)`` of the (R, d) parameters, or ``Observable(fn, previous=True)``
        for ``fn(w, w_previous)`` with the parameters one update earlier.
    engine : {"auto", "numpy", "fast"}
        ``"numpy"``: the vectorised numpy path (any problem and optimizer). ``"fast"``: the
        compiled kernels of :mod:`convstudy._fast` (built-in linear and tanh-network problems
        with rule-built optimizers; ``ValueError`` otherwise). ``"auto"`` (default): fast when
        supported, numpy otherwise. Both give the same trajectories to rounding (1e-12
        relative) from the same seed; ``frame.attrs["engine"]`` says which ran.

    Returns
    -------
    pandas.DataFrame
        One row per replicate x recorded step with columns ``replicate, step, samples, loss,
        subopt, grad_norm_sq, diverged``; ``subopt`` is f(w) - f* (NaN when f* is unknown).
        ``frame.attrs`` holds the run's settings, the engine that ran (``engine``), its wall
        time and the part of it spent updating (``stepping_time``), in seconds.
    """
    owner = "simulate"
    if not isinstance(problem, Problem):
        raise TypeError(f"The 'problem' parameter of simulate must be a Problem. Got {problem!r}.")
    optimizer, schedule, sampler = _resolve(optimizer, schedule, sampler)
    engine = check_option(engine, "engine", owner, ENGINES)
    if project is not None and not callable(project):
        raise TypeError(
            f"The 'project' parameter of simulate must be a callable (R, d) -> (R, d) or None. "
            f"Got {project!r} instead."
        )
    observables = _observables(observe)
    n_steps = check_scalar(n_steps, "n_steps", owner, kind=int, low=0, closed="left")
    batch_size = check_batch_size(sampler, batch_size, problem.n_samples, owner)
    seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
    if replicates is None:
        n_rep = check_scalar(n_replicates, "n_replicates", owner, kind=int, low=1, closed="left")
        replicate_ids = np.arange(n_rep)
    else:
        replicate_ids = check_array(list(replicates), "replicates", owner, ndim=1, dtype=np.int64)
        if replicate_ids.size == 0 or replicate_ids.min() < 0:
            raise ValueError("The 'replicates' parameter of simulate must list ids >= 0.")
    n_rep = replicate_ids.size
    steps = record_steps(n_steps, record, n_records)
    # Only the streams that will be used are built (the same generators as replicate_generators).
    ids = replicate_ids.tolist()
    sample_rngs = [_stream(seed, r, 0) for r in ids] if sampler.random else [None] * n_rep
    init_rngs = [_stream(seed, r, 1) for r in ids] if isinstance(w0, str) else []
    w = _initial_points(problem, w0, init_rngs, n_rep)
    _check_problem_outputs(problem, w)
    etas = schedule(np.arange(n_steps))
    # A step of 0 is allowed (cosine down to eta_min = 0, an exponential that underflows): the
    # update then does not move. Negative or non-finite steps are refused.
    if n_steps and not np.all(np.isfinite(etas) & (etas >= 0)):
        bad = float(etas[~(np.isfinite(etas) & (etas >= 0))][0])
        raise ValueError(
            f"The 'schedule' parameter of simulate gave a step size {bad!r} "
            f"({schedule.label()}); step sizes must be finite and >= 0."
        )

    f_star = problem.f_star
    if divergence_bound is not None:
        divergence_bound = check_scalar(divergence_bound, "divergence_bound", owner, low=0.0)
    state = optimizer.init(w)
    check_state(optimizer, state, n_rep, "init")
    active = np.ones(n_rep, dtype=bool)
    path = _choose_engine(engine, problem, optimizer, sampler, project)
    if path == "fast":
        from ._fast import FastStepper

        stepper = FastStepper(problem, optimizer, sampler, batch_size, w, state, etas, sample_rngs)
    else:
        stepper = _NumpyStepper(
            problem, optimizer, sampler, batch_size, w, state, etas, sample_rngs, project
        )

    at_start = stepper.loss_and_grad_norm_sq()  # also the record at step 0
    f0 = at_start[0]
    ref = f0 - (f_star if f_star is not None else f0)
    if divergence_bound is None:
        bound = 1e6 * np.maximum(ref, 1.0)
    else:
        bound = np.full(n_rep, divergence_bound)
    offset = f_star if f_star is not None else f0
    rows: list[dict] = []
    t0 = time.perf_counter()

    def _record(k: int, w_previous: np.ndarray | None) -> None:
        w = stepper.w
        loss, gsq = at_start if k == 0 else stepper.loss_and_grad_norm_sq()
        bad = ~np.isfinite(loss) | ~np.isfinite(gsq) | (loss - offset > bound)
        active[bad] = False
        loss = np.where(active, loss, np.nan)
        row = {
            "replicate": replicate_ids,
            "step": np.full(n_rep, k),
            "samples": np.full(n_rep, k * batch_size, dtype=np.int64),
            "loss": loss,
            "subopt": loss - f_star if f_star is not None else np.full(n_rep, np.nan),
            "grad_norm_sq": np.where(active, gsq, np.nan),
            "diverged": ~active,
        }
        if record_iterates:
            for j in range(problem.dim):
                row[f"w_{j}"] = np.where(active, w[:, j], np.nan)
        row.update(_observe(observables, w, w_previous, active, n_rep))
        rows.append(row)

    # Record after k updates for every k in the grid; updates past the last record are not run
    # (they could not change the output).
    # An observable of the previous iterate needs w one update before each record: the stepper
    # stops there and keeps a copy (at step 0 there is none: NaN).
    keep_previous = any(o.previous for o in observables.values())
    stepping = 0.0
    try:
        done = 0
        for k in steps.tolist():
            w_previous = np.full_like(stepper.w, np.nan) if keep_previous else None
            t_step = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):
                if keep_previous and k > done:
                    stepper.advance(done, k - 1, active)
                    w_previous = stepper.w.copy()
                    stepper.advance(k - 1, k, active)
                else:
                    stepper.advance(done, k, active)
            stepping += time.perf_counter() - t_step
            done = k
            _record(k, w_previous)
    finally:
        stepper.close()

    frame = pd.DataFrame({key: np.concatenate([r[key] for r in rows]) for key in rows[0]})
    frame = frame.sort_values(["replicate", "step"], kind="stable", ignore_index=True)
    frame.attrs.update(
        {
            "problem": problem.name,
            **{f"problem.{k}": v for k, v in problem.params().items() if k != "problem"},
            "optimizer": optimizer.name,
            **{f"optimizer.{k}": v for k, v in optimizer.hyperparams.items()},
            "schedule": schedule.params()["schedule"],
            **{f"schedule.{k}": v for k, v in schedule.params().items() if k != "schedule"},
            "robbins_monro": schedule.robbins_monro,
            "sampler": sampler.name,
            "batch_size": batch_size,
            "n_steps": n_steps,
            "seed": seed,
            "f_star": f_star,
            "problem.mu": problem.mu,
            "problem.L": problem.L,
            "wall_time": time.perf_counter() - t0,
            "engine": path,
            "stepping_time": stepping,
        }
    )
    return frame
