"""Write a comparison: runs as Parquet with provenance, tables, figures, a page and a README.

Folder layout (``out/``)::

    comparison.json           settings, problems, methods, caveats, captions, provenance
    runs.parquet              every evaluation run (one row per replicate x record step)
    trials.parquet            every tuning run
    times.parquet             per replicate times to target (iterations, samples, seconds)
    tables/<stem>.csv|md      ranking, improvement, medians, finals, chosen, tuning, profile
    figures/<stem>.png        curves, survival, profile, sensitivity (+ .svg on request)
    README.md, index.html     the comparison page (index.html embeds its images)

Each Parquet file carries the provenance (convstudy, python, numpy, scipy, pandas, numba
versions, platform, git revision of convstudy when it is a checkout, engines, seed, replicates,
budgets, command line) in its metadata under ``convstudy_provenance``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..output import atomic_write, atomic_write_text, write_figures, write_table
from ..runner import provenance
from .protocol import Comparison

__all__ = ["write_comparison", "comparison_record", "TABLES", "PARQUET"]

TABLES = ("ranking", "improvement", "medians", "finals", "chosen", "tuning", "profile")
PARQUET = ("runs", "trials", "times")
_PROVENANCE = b"convstudy_provenance"


def _provenance(result: Comparison, frame) -> dict:
    s = result.settings
    return {
        **provenance(frame=frame),
        "seed": s["seed"], "replicates": s["replicates"], "tune_replicates": s["tune_replicates"],
        "budget": s["budget"], "search": s["search"], "selection": s["selection"],
        "quick": s["quick"],
    }  # fmt: skip


def _write_parquet(frame, path: Path, meta: dict) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), _PROVENANCE: json.dumps(meta).encode()}
    table = table.replace_schema_metadata(metadata)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def comparison_record(result: Comparison, captions: dict[str, str], figures: list[str]) -> dict:
    """What ``comparison.json`` holds."""
    return {
        "title": f"{', '.join(m.label for m in result.methods)} on "
        f"{len(result.problems)} problem(s)",
        "settings": result.settings,
        "problems": [
            {
                "name": p.name,
                "problem": p.problem,
                "params": dict(p.params),
                "metric": p.metric,
                "target": result.settings["targets"][p.name],
                "description": p.description,
                "n_steps": p.quick_steps if result.settings["quick"] else p.n_steps,
                "batch_size": p.batch_size,
                "sampler": p.sampler,
            }
            for p in result.problems
        ],  # fmt: skip
        "methods": [
            {
                "name": m.label,
                "optimizer": m.optimizer,
                "schedule": m.schedule,
                "space": {k: str(v) for k, v in m.space.items()},
                "fixed": dict(m.fixed),
            }
            for m in result.methods
        ],  # fmt: skip
        "caveats": list(result.caveats),
        "captions": captions,
        "figures": figures,
        "provenance": _provenance(result, result.runs),
        "n_computed": result.n_computed,
        "n_cached": result.n_cached,
        "wall_time": result.wall_time,
    }


def write_comparison(
    result: Comparison, out: str | os.PathLike, *, formats=("png",), figure_jobs: int = 1
) -> list[Path]:
    """Write every output of ``result`` under ``out`` (layout in the module docstring)."""
    from .figures import comparison_figures
    from .page import render_comparison_html, render_comparison_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = {"runs": result.runs, "trials": result.trials, "times": result.tables["times"]}
    paths = [
        _write_parquet(frame, out / f"{stem}.parquet", _provenance(result, frame))
        for stem, frame in frames.items()
    ]
    for stem in TABLES:
        paths += write_table(result.tables[stem], out / "tables", stem)
    figures, captions = comparison_figures(result)
    paths += write_figures(figures, out / "figures", formats, n_jobs=figure_jobs)
    record = comparison_record(result, captions, list(figures))
    text = json.dumps(record, indent=1, default=str)
    paths.append(atomic_write_text(out / "comparison.json", text))
    paths.append(atomic_write_text(out / "README.md", render_comparison_markdown(out)))
    paths.append(atomic_write_text(out / "index.html", render_comparison_html(out)))
    return paths
