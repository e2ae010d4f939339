"""The ``convstudy`` command (also ``python -m convstudy``).

Subcommands: ``list``, ``run``, ``report``, ``claims``, ``reproduce``, ``compare``, ``bench``.

Exit status: 0 success; 1 when a study failed (its traceback is printed, the other studies
still run, finished cells stay cached) or, with ``--strict``, when a claim is not reproduced;
2 for a usage error (unknown study, bad number, a study file that does not import, an invalid
grid, an unreachable Dask scheduler), printed as one line ``convstudy: error: ...`` on stderr;
130 when interrupted (rerun the same command to resume from the cache).
Set ``CONVSTUDY_TRACEBACK=1`` to see the traceback behind a one-line error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__

__all__ = ["main", "build_parser"]

PROG = "convstudy"


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``convstudy: error: ...`` and exit status 2."""

    def error(self, message: str):  # noqa: D102 (argparse API)
        self.exit(2, f"{PROG}: error: {' '.join(message.split())}\n")


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


_positive = _int_at_least(1, "an integer >= 1")
_non_negative = _int_at_least(0, "an integer >= 0")


_STUDY_HELP = {
    "replicates": "replicates per condition (default: the study's own, smaller with --quick)",
    "out": "reports folder (default: reports, or reports-quick with --quick, so that a quick "
    "run never overwrites the full report)",
    "seed": "study seed (0)",
}
_COMPARE_HELP = {
    "replicates": "evaluation replicates per method and problem (default 64, 16 with --quick)",
    "out": "output folder (default: comparison, or comparison-quick with --quick)",
    "seed": "run seed (0): every cell and bootstrap seed derives from it",
}


def _add_execution(p: argparse.ArgumentParser, texts: dict[str, str] = _STUDY_HELP) -> None:
    """Options shared by run, claims, reproduce and compare: size, seed, output, cache,
    executor (``texts``: the help of --replicates, --out and --seed)."""
    p.add_argument("--quick", action="store_true", help="reduced grids and budgets (a first look)")
    p.add_argument("--replicates", type=_positive, metavar="R", help=texts["replicates"])
    p.add_argument("--seed", type=_non_negative, default=0, metavar="S", help=texts["seed"])
    p.add_argument("--out", metavar="DIR", help=texts["out"])
    p.add_argument(
        "--fresh",
        action="store_true",
        help="recompute every cell and redraw every figure (ignore the cache)",
    )
    p.add_argument("--svg", action="store_true", help="also write every figure as SVG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--jobs", type=_positive, default=1, metavar="N", help="local worker processes (1)"
    )
    p.add_argument(
        "--threads",
        type=_positive,
        metavar="T",
        help="at most T threads per compiled kernel (default: the cores this process may use; "
        "1 per worker with --jobs > 1 or Dask)",
    )
    p.add_argument(
        "--chunk-size",
        type=_positive,
        metavar="C",
        help="replicates per task (default: all of a condition's replicates in one task)",
    )
    dask = p.add_mutually_exclusive_group()
    dask.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run tasks on this Dask cluster"
    )
    dask.add_argument(
        "--dask-local", type=_positive, metavar="N", help="run on a local Dask cluster of N workers"
    )


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"must look like NAME=VALUE, got {text!r}")
    return name, value


def _add_compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--optimizer",
        action="append",
        default=[],
        metavar="NAME",
        help="an optimizer to compare (repeatable): a registered name, an import path "
        "module:attr (the current folder is importable), or file.py:attr",
    )
    p.add_argument(
        "--baselines",
        default="sgd,momentum,nesterov,adam",
        metavar="A,B",
        help="baselines, comma-separated (default: sgd,momentum,nesterov,adam; 'none' for none)",
    )
    p.add_argument(
        "--problems",
        default="testbed",
        metavar="P,Q",
        help="'testbed' (the built-in testbed), testbed or registered problem names, or import "
        "paths module:factory, comma-separated (default: testbed)",
    )
    p.add_argument(
        "--budget", type=_positive, default=16, metavar="B", help="tuning trials per method (16)"
    )
    p.add_argument(
        "--lr-range",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="a method's searched learning rates (default 1e-5:10 for every method)",
    )
    p.add_argument(
        "--method-budget",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=B",
        help="a method's own number of trials: refused unless --allow-unequal-budgets",
    )
    p.add_argument(
        "--allow-unequal-budgets",
        action="store_true",
        help="run a comparison with unequal budgets, reported as unequal",
    )
    p.add_argument("--search", choices=["grid", "random"], default="grid", help="trial placement")
    p.add_argument(
        "--selection",
        choices=["time", "final"],
        default="time",
        help="choose the trial with the shortest median time to target (default) or the lowest "
        "median final objective",
    )
    p.add_argument(
        "--tune-replicates",
        type=_positive,
        metavar="R",
        help="replicates per tuning trial (default 8, 4 with --quick)",
    )


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"must be distinct integers >= 0 separated by commas, e.g. 1,2; got {text!r}"
        )
    return seeds


def _add_seeds(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seeds",
        type=_seed_list,
        default=(),
        metavar="S1,S2",
        help="also re-run every check on these independent seeds (other than --seed) and show "
        "in the claims table how many seeds agree with each verdict; their runs are cached, "
        "not written",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convstudy`` command."""
    parser = _Parser(
        prog=PROG,
        description="Empirical convergence analysis of gradient methods over many seeds: "
        "studies, claims with confidence intervals, and a report.",
        epilog="Start with `convstudy reproduce --quick`. "
        "Set CONVSTUDY_TRACEBACK=1 to see tracebacks behind one-line errors.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="the built-in studies and the claims each checks")

    run = sub.add_parser(
        "run",
        help="run studies (built-in names or .py files)",
        description="Compute (or load from the cache), analyse and write each study to "
        "OUT/<study>/: runs.parquet, tables, figures, claims.csv, README.md.",
    )
    run.add_argument(
        "studies", nargs="+", metavar="STUDY", help="a built-in study name or a .py study file"
    )
    run.add_argument(
        "--variant",
        metavar="NAME",
        help="run a study's deliberately broken variant (see `convstudy list`), written to "
        "OUT/<study>@<variant>/: its checks should read 'not reproduced'",
    )
    _add_execution(run)

    report = sub.add_parser(
        "report",
        help="rebuild OUT/index.md and OUT/index.html",
        description="Rebuild the report index from the files under OUT (nothing is recomputed).",
    )
    report.add_argument(
        "--out", default="reports", metavar="DIR", help="reports folder (default: reports)"
    )

    claims = sub.add_parser(
        "claims",
        help="measure every claim; write OUT/claims.csv and OUT/claims.md",
        description="Run the studies that check claims (reusing the cache), print the claims "
        "table and write OUT/claims.csv and OUT/claims.md.",
    )
    claims.add_argument(
        "studies",
        nargs="*",
        metavar="STUDY",
        help="studies to include (default: every built-in study that checks a claim)",
    )
    claims.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any claim is not reproduced or a condition diverged in every replicate",
    )
    claims.add_argument(
        "--table", action="store_true", help="also print the full claims table (wide)"
    )
    _add_seeds(claims)
    _add_execution(claims)

    reproduce = sub.add_parser(
        "reproduce",
        help="the main job: every study, then the claims, then the report",
        description="Run every study (or the given ones), write the claims table and rebuild "
        "the report index.",
    )
    reproduce.add_argument(
        "studies", nargs="*", metavar="STUDY", help="studies to run (default: every built-in)"
    )
    reproduce.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any claim is not reproduced or a condition diverged in every replicate",
    )
    _add_seeds(reproduce)
    _add_execution(reproduce)

    compare = sub.add_parser(
        "compare",
        help="compare your optimizer with baselines under an equal tuning budget",
        description="Tune every method with the same budget of trials on tuning seeds, "
        "evaluate the chosen settings on fresh seeds, and write times to target (Kaplan-Meier), "
        "performance profiles, P(A faster than B) and a ranking, all with CIs, to OUT/ "
        "(index.html, README.md, tables, figures, Parquet runs with provenance).",
    )
    _add_compare_options(compare)
    _add_execution(compare, _COMPARE_HELP)

    sub.add_parser(
        "bench",
        help="throughput and scaling benchmarks (see `convstudy bench --help`)",
        add_help=False,
    )
    return parser


# --------------------------------------------------------------------------- commands


def _load(names: Sequence[str]):
    from .loader import load_study

    studies = [load_study(n) for n in names]
    seen: dict[str, str] = {}
    for name, study in zip(names, studies):
        if study.name in seen and seen[study.name] != name:
            raise UsageError(
                f"{name!r} and {seen[study.name]!r} both define a study named {study.name!r}."
            )
        seen[study.name] = name
    return list({s.name: s for s in studies}.values())


def _builtin_studies(with_claims: bool = False) -> tuple[list, list[str]]:
    """Every built-in study (that checks a claim); one that fails to import is reported in one
    line and listed as failed, and the others go on."""
    from .loader import list_studies, load_study

    studies, failed = [], []
    for name in list_studies():
        try:
            studies.append(load_study(name))
        except ValueError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            failed.append(name)
    if with_claims:
        studies = [s for s in studies if s.claims]
    if not studies:
        raise UsageError(
            "no built-in studies found" + (" that check claims" if with_claims else "")
        )
    return studies, failed


def _studies_of(args, with_claims: bool = False) -> tuple[list, list[str]]:
    """The studies named on the command line, or else the built-in ones."""
    if args.studies:
        return _load(args.studies), []
    return _builtin_studies(with_claims)


def _executor(args):
    from .runner import get_executor

    try:
        return get_executor(args.jobs, args.scheduler, args.dask_local)
    except ImportError as exc:  # dask missing: the message says how to install it
        raise UsageError(str(exc)) from exc


def _summary(result) -> str:
    checks = result.analysis.checks
    verdicts = ""
    if checks:
        from .claims import checks_frame
        from .report import verdict_counts

        counts = verdict_counts(checks_frame(checks))
        verdicts = "; " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    n, c = result.n_computed, result.n_cached
    line = (
        f"{result.study.name}: {n} cell{'s' * (n != 1)} computed, {c} from cache, "
        f"{result.wall_time:.1f} s -> {result.folder}{verdicts}"
    )
    k = len(result.all_diverged)
    if k:
        first = ", ".join(f"{key}={value}" for key, value in result.all_diverged[0].items())
        first = first if len(first) <= 120 else first[:117] + "..."
        line += (
            f"\n  warning: every replicate diverged in {k} condition{'s' * (k != 1)} (e.g. {first})"
        )
    return line


def _check_sizes(studies, args) -> None:
    """Validate every study's size and grid before running any (one-line errors)."""
    for study in studies:
        scale = study.scale(
            args.quick, getattr(args, "replicates", None), variant=getattr(args, "variant", None)
        )
        study.grid(scale)


def _run_all(studies, args, cache_dir=None) -> tuple[list, list[str]]:
    """Run each study with the shared options, printing one summary line per study.

    A study's figures are drawn in background processes while the next study computes; its
    line is printed (in study order) once its outputs are all written. A study that fails is
    reported with its traceback and skipped; the others still run. Returns the results and the
    names of the studies that failed.
    """
    from ._cores import available_cores
    from .output import FigureWriter
    from .runner import run_study

    _check_sizes(studies, args)
    from tqdm.auto import tqdm

    executor = _executor(args)
    results, failed, waiting = [], [], []
    overall = tqdm(
        total=len(studies),
        unit="study",
        disable=args.quiet or not sys.stderr.isatty() or len(studies) < 2,
        position=0,
        bar_format="{desc} {n_fmt}/{total_fmt} studies |{bar}| {elapsed}",
    )

    def report(study, action):
        """``action()``, or None after printing its error with the traceback and counting the
        study as failed."""
        try:
            return action()
        except ConnectionError:  # the cluster is gone: no point going on
            raise
        except Exception as exc:
            bad_condition = getattr(exc, "condition", None) is not None
            if bad_condition and isinstance(exc, (ValueError, TypeError)):
                raise  # a bad condition in the study: one line, exit 2 (see main)
            print(f"{PROG}: study {study.name!r} failed:", file=sys.stderr)
            traceback.print_exc()
            failed.append(study.name)
            return None

    def finish(block: bool) -> None:
        """Print the lines of the studies whose outputs are written, in study order."""
        while waiting and (block or waiting[0].pending is None or waiting[0].pending.done()):
            result = waiting.pop(0)
            if report(result.study, result.wait) is not None:
                overall.write(_summary(result))
                results.append(result)
            overall.update(1)

    figures = FigureWriter(available_cores())
    try:
        for study in studies:
            overall.set_description(study.name)
            result = report(
                study,
                lambda study=study: run_study(
                    study,
                    quick=args.quick,
                    replicates=getattr(args, "replicates", None),
                    seed=args.seed,
                    out=args.out,
                    executor=executor,
                    fresh=args.fresh,
                    quiet=args.quiet,
                    chunk_size=args.chunk_size,
                    variant=getattr(args, "variant", None),
                    cache_dir=cache_dir,
                    formats=("png", "svg") if getattr(args, "svg", False) else ("png",),
                    figure_writer=figures,
                ),
            )
            if result is None:
                overall.update(1)
            else:
                waiting.append(result)
            finish(block=False)
        finish(block=True)
    finally:
        figures.close()
        overall.close()
        close = getattr(executor, "close", None)
        if callable(close):
            close()
    return results, failed


def _report_failures(failed: list[str], n_studies: int) -> int:
    """Exit status 1 with one line naming the failed studies (their tracebacks came first)."""
    if not failed:
        return 0
    print(
        f"{PROG}: {len(failed)} of {n_studies} studies failed: {', '.join(failed)} "
        "(errors above; finished cells are cached)",
        file=sys.stderr,
    )
    return 1


def _claims_of(results):
    import pandas as pd

    from .claims import checks_frame
    from .report import order_checks

    frames = []
    for result in results:
        frame = checks_frame(result.analysis.checks)
        if len(frame):
            frames.append(frame.assign(study=result.study.name))
    if not frames:
        return order_checks(checks_frame([]))
    return order_checks(pd.concat(frames, ignore_index=True))


def _other_seeds_claims(studies, args) -> list:
    """The claims tables of every seed in ``--seeds`` other than ``--seed`` (runs cached in
    OUT/.cache, nothing written)."""
    from argparse import Namespace

    tables = []
    for seed in getattr(args, "seeds", ()):
        if seed == args.seed:
            continue
        print(f"seed {seed}:", flush=True)
        quiet_args = Namespace(**{**vars(args), "seed": seed, "out": None})
        results, _ = _run_all(studies, quiet_args, cache_dir=Path(args.out) / ".cache")
        tables.append((seed, _claims_of(results)))
    return tables


def _write_and_print_claims(results, args, others=()) -> int:
    """Write the claims table; print a compact summary (the full table is in the files)."""
    from .claims import seed_agreement
    from .report import claims_summary, claims_terminal_table, write_claims

    claims = _claims_of(results)
    if others:
        claims = seed_agreement(claims, args.seed, list(others))
    paths = write_claims(claims, args.out)
    print()
    if getattr(args, "table", False):
        print(claims_terminal_table(claims))
        print()
    print(claims_summary(claims))
    for verdict in ("not reproduced", "inconclusive", "within tolerance"):
        ids = claims.loc[(claims["verdict"] == verdict) & (claims["kind"] == "claim"), "id"]
        if len(ids):
            shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
            print(f"  {verdict}: {shown}")
    diverged = [(r.study.name, c) for r in results for c in r.all_diverged]
    if diverged:
        print(f"  every replicate diverged in {len(diverged)} condition(s), in studies "
              f"{', '.join(sorted({name for name, _ in diverged}))}")  # fmt: skip
    print(f"full table: {paths[1]} (CSV: {paths[0]})")
    failed = int((claims["verdict"] == "not reproduced").sum())
    status = 0
    if args.strict and failed:
        print(f"{PROG}: {failed} claim check(s) not reproduced (--strict)", file=sys.stderr)
        status = 1
    if args.strict and diverged:
        print(
            f"{PROG}: every replicate diverged in {len(diverged)} condition(s) (--strict)",
            file=sys.stderr,
        )
        status = 1
    return status


def _cmd_list(args) -> int:
    from .loader import list_studies, load_study

    names = list_studies()
    if not names:
        print("No built-in studies found.")
        return 0
    rows = []
    for name in names:
        try:
            study = load_study(name)
        except ValueError as exc:
            rows.append((name, "-", f"(failed to load: {exc})"))
            continue
        claims = ",".join(str(c) for c in study.claims) or "-"
        rows.append((name, claims, study.title))
    width = max(len(r[0]) for r in rows)
    cwidth = max(len("claims"), *(len(r[1]) for r in rows))
    print(f"{'study':<{width}}  {'claims':<{cwidth}}  title")
    for name, claims, title in rows:
        print(f"{name:<{width}}  {claims:<{cwidth}}  {title}")
    variants = [
        (name, variant, spec.description)
        for name in names
        for variant, spec in sorted(getattr(_safe_load(name), "variants", {}).items())
    ]
    if variants:
        print("\nbroken variants (convstudy run STUDY --variant NAME; their checks must fail):")
        for name, variant, description in variants:
            print(f"  {name} --variant {variant}: {description}")
    return 0


def _safe_load(name: str):
    from .loader import load_study

    try:
        return load_study(name)
    except ValueError:
        return None


def _cmd_run(args) -> int:
    studies = _load(args.studies)
    _, failed = _run_all(studies, args)
    return _report_failures(failed, len(studies))


def _cmd_report(args) -> int:
    from .report import build_index

    paths = build_index(args.out)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def _cmd_claims(args) -> int:
    studies, broken = _studies_of(args, with_claims=True)
    results, failed = _run_all(studies, args)
    others = _other_seeds_claims(studies, args)
    status = _write_and_print_claims(results, args, others)
    return _report_failures(broken + failed, len(studies) + len(broken)) or status


def _cmd_reproduce(args) -> int:
    from .report import build_index

    studies, broken = _studies_of(args)
    results, failed = _run_all(studies, args)
    others = _other_seeds_claims([r.study for r in results if r.study.claims], args)
    status = _write_and_print_claims(results, args, others)
    paths = build_index(args.out)
    print(f"wrote {paths[0]} and {paths[1]}")
    return _report_failures(broken + failed, len(studies) + len(broken)) or status


def _import_name(spec: str) -> str:
    """An optimizer argument with ``file.py:attr`` turned into ``module:attr`` (its folder made
    importable here and in workers)."""
    from .registry import add_import_folder

    module, sep, attr = spec.rpartition(":")
    if sep and module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise UsageError(f"--optimizer {spec!r}: no file {module!r}")
        add_import_folder(path.parent)
        return f"{path.stem}:{attr}"
    return spec


def _compare_methods(args) -> tuple[list, list]:
    import dataclasses

    from .compare import Method, method_of
    from .compare.space import LogUniform

    ranges, budgets = dict(args.lr_range), dict(args.method_budget)
    baselines = [] if args.baselines == "none" else [b.strip() for b in args.baselines.split(",")]
    methods = [method_of(_import_name(o)) for o in args.optimizer]
    baselines = [method_of(b) for b in baselines if b]
    unknown = sorted((set(ranges) | set(budgets)) - {m.label for m in methods + baselines})
    if unknown:
        raise UsageError(f"--lr-range/--method-budget name {unknown}, which are not compared")

    def adjusted(m: Method) -> Method:
        space, budget = dict(m.space), m.budget
        if m.label in ranges:
            low, sep, high = ranges[m.label].partition(":")
            try:
                space["lr"] = LogUniform(float(low), float(high))
            except ValueError as exc:
                reason = exc if sep else "give LOW:HIGH, e.g. 1e-4:1"
                raise UsageError(f"--lr-range {m.label}={ranges[m.label]}: {reason}") from None
        if m.label in budgets:
            try:
                budget = int(budgets[m.label])
            except ValueError:
                raise UsageError(f"--method-budget {m.label}: not an integer") from None
        return dataclasses.replace(m, space=space, budget=budget)

    return [adjusted(m) for m in methods], [adjusted(m) for m in baselines]


def _cmd_compare(args) -> int:
    from .compare import compare
    from .compare.output import write_comparison
    from .registry import add_import_folder

    add_import_folder(Path.cwd())
    methods, baselines = _compare_methods(args)
    executor = _executor(args)
    try:
        result = compare(
            methods,
            baselines=baselines,
            problems=args.problems,
            budget=args.budget,
            search=args.search,
            selection=args.selection,
            replicates=args.replicates,
            tune_replicates=args.tune_replicates,
            quick=args.quick,
            seed=args.seed,
            allow_unequal_budgets=args.allow_unequal_budgets,
            executor=executor,
            cache_dir=Path(args.out) / ".cache",
            fresh=args.fresh,
            quiet=args.quiet,
            chunk_size=args.chunk_size,
        )
    finally:
        close = getattr(executor, "close", None)
        if callable(close):
            close()
    formats = ("png", "svg") if args.svg else ("png",)
    write_comparison(result, args.out, formats=formats, figure_jobs=2)
    print(_compare_summary(result, Path(args.out)))
    return 0


def _compare_summary(result, out: Path) -> str:
    ranking = result.tables["ranking"]
    ranks = ", ".join(
        f"{r.rank}. {r.method} {r.iqm:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"
        for r in ranking.itertuples()
    )
    n, c = result.n_computed, result.n_cached
    lines = [
        f"compare: {n} cell{'s' * (n != 1)} computed, {c} from cache, {result.wall_time:.1f} s "
        f"-> {out / 'index.html'}",
        f"  ranking (IQM of normalised {result.settings['unit']} to target, 95% CI): {ranks}",
    ]
    if result.caveats:
        lines.append(f"  {len(result.caveats)} caveat(s): see {out / 'README.md'}")
    return "\n".join(lines)


def _cmd_bench(argv: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module("convstudy.bench")
    except ImportError as exc:
        raise UsageError(f"the benchmarks are not available ({exc})") from exc
    status = bench.main(argv)
    return int(status or 0)


_COMMANDS = {
    "list": _cmd_list,
    "run": _cmd_run,
    "report": _cmd_report,
    "claims": _cmd_claims,
    "reproduce": _cmd_reproduce,
    "compare": _cmd_compare,
}


def _check_writable(out: Path) -> None:
    """Refuse, in one line, an --out that cannot hold the reports (before any work is done)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".convstudy-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--out {str(out)!r} is not writable ({reason}); choose another folder"
        ) from exc


def _fail(message: str, exc: BaseException | None = None) -> int:
    if exc is not None and os.environ.get("CONVSTUDY_TRACEBACK"):
        raise exc
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning of a run as one line a user reads (no source path, no code line)."""
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``convstudy`` command and return its exit status (see the module docstring:
    0 ok, 1 a study failed or --strict found a claim not reproduced, 2 usage error,
    130 interrupted)."""
    import warnings

    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        if argv and argv[0] == "bench":
            return _cmd_bench(argv[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        if args.command is None:
            return _fail(f"choose a command: {', '.join([*_COMMANDS, 'bench'])} (see --help)")
        if getattr(args, "threads", None) is not None:
            from ._cores import set_thread_limit

            set_thread_limit(args.threads)
        if args.command != "list" and getattr(args, "out", "") is None:
            stem = "comparison" if args.command == "compare" else "reports"
            args.out = f"{stem}-quick" if getattr(args, "quick", False) else stem
        if getattr(args, "out", None) is not None and args.command != "report":
            _check_writable(Path(args.out))
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        return _fail(str(exc), exc)
    except (ValueError, TypeError) as exc:  # our validators: the message names the argument
        return _fail(str(exc), exc)
    except ConnectionError as exc:  # an unreachable Dask scheduler, or one without workers
        return _fail(str(exc), exc)
    except KeyboardInterrupt:
        print(
            f"\n{PROG}: interrupted; finished cells are cached, rerun the command to resume.",
            file=sys.stderr,
        )
        return 130
