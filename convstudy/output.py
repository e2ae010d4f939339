"""Writing results: atomic files, tables (CSV + Markdown), figures (PNG, SVG on request).

Every file is written to a temporary name in the same folder and then renamed over the target
(``os.replace`` is atomic on POSIX), so an interrupted run never leaves a truncated file.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = [
    "atomic_write",
    "write_table",
    "write_figure",
    "write_figures",
    "FigureWriter",
    "check_figure_formats",
    "close_figures",
    "markdown_table",
    "FIGURE_FORMATS",
]

FIGURE_FORMATS = ("png", "svg")  # the formats a figure can be written in; PNG by default
_UMASK = os.umask(0)
os.umask(_UMASK)
# fixed SVG ids and no timestamps: the same figure gives the same bytes
matplotlib.rcParams["svg.hashsalt"] = "convstudy"


def check_figure_formats(formats) -> None:
    """A one-line error for a format that is not in :data:`FIGURE_FORMATS`."""
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"Figure format must be one of {FIGURE_FORMATS}. Got {fmt!r}.")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table with floats to 4 significant digits."""
    return frame.to_markdown(index=False, floatfmt=floatfmt)


def write_table(frame: pd.DataFrame, folder: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``stem.csv`` (full precision) and ``stem.md`` into ``folder``."""
    folder = Path(folder)
    csv = atomic_write(folder / f"{stem}.csv", lambda tmp: frame.to_csv(tmp, index=False))
    md = atomic_write_text(folder / f"{stem}.md", markdown_table(frame) + "\n")
    return [csv, md]


def write_figure(
    fig, folder: str | os.PathLike, stem: str, formats=("png",), dpi: int = 110
) -> list[Path]:
    """Save a matplotlib figure as ``stem.<format>`` for each format (no timestamps), then
    close it. Figures use constrained layout, so no second tight-bounding-box pass is drawn."""
    folder = Path(folder)
    paths = []
    check_figure_formats(formats)
    for fmt in formats:
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        paths.append(
            atomic_write(
                folder / f"{stem}.{fmt}",
                lambda tmp, fmt=fmt, meta=meta: fig.savefig(
                    tmp, format=fmt, dpi=dpi, metadata=meta
                ),
            )
        )
    plt.close(fig)
    return paths


def close_figures(figures: dict) -> None:
    """Close figures that will not be written (a run with no output folder)."""
    for fig in figures.values():
        plt.close(fig)


def _write_pickled_figure(payload: bytes, folder: str, stem: str, formats) -> list[Path]:
    return write_figure(pickle.loads(payload), folder, stem, formats)


def _pickle_and_close(figures: dict) -> dict[str, bytes]:
    """Each figure pickled (a worker process redraws it), then closed here."""
    payloads = {stem: pickle.dumps(fig) for stem, fig in figures.items()}
    close_figures(figures)
    return payloads


def _draw_payloads(payloads: dict[str, bytes], folder, formats, n_jobs: int) -> list[Path]:
    from joblib import Parallel, delayed

    done = Parallel(n_jobs=min(n_jobs, len(payloads)))(
        delayed(_write_pickled_figure)(data, str(folder), stem, tuple(formats))
        for stem, data in payloads.items()
    )
    return [p for paths in done for p in paths]


def write_figures(
    figures: dict, folder: str | os.PathLike, formats=("png",), n_jobs: int = 1
) -> list[Path]:
    """Write several figures; with ``n_jobs > 1`` they are drawn in parallel worker processes
    (drawing, not computing, is what a figure costs). Closes every figure."""
    if n_jobs <= 1 or len(figures) < 2:
        return [
            p for stem, fig in figures.items() for p in write_figure(fig, folder, stem, formats)
        ]
    return _draw_payloads(_pickle_and_close(figures), folder, formats, n_jobs)


def _lower_priority() -> None:
    """Worker initialiser: run at a lower priority (nice +10), so that figures drawn beside a
    computation take the cores it leaves idle rather than stall its kernel threads."""
    try:
        os.nice(10)
    except (AttributeError, OSError):  # no nice on this platform, or not allowed: draw as is
        pass


class FigureWriter:
    """Figures drawn in the background while the caller goes on (the next study computes).

    :meth:`submit` pickles the figures in the caller's thread (matplotlib is not thread-safe)
    and closes them, then returns a :class:`~concurrent.futures.Future` at once. ``n_jobs``
    worker processes, started on first use at a lower priority (they take the cores the
    computation leaves idle), redraw and write them; one background thread waits for each
    batch in turn and then calls its ``then`` (if given): the place to record that a folder's
    outputs are complete. Use as a context manager, or call :meth:`close`, which waits for
    every batch.
    """

    def __init__(self, n_jobs: int = 1):
        if int(n_jobs) < 1:
            raise ValueError(f"n_jobs must be an integer >= 1. Got {n_jobs!r}.")
        self.n_jobs = int(n_jobs)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convstudy-figures")
        self._workers: ProcessPoolExecutor | None = None

    def submit(
        self,
        figures: dict,
        folder: str | os.PathLike,
        formats=("png",),
        then: Callable[[], None] | None = None,
    ) -> Future:
        check_figure_formats(formats)  # here, not in a worker: the caller gets the error
        if figures and self._workers is None:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded process
            self._workers = ProcessPoolExecutor(
                self.n_jobs, mp_context=context, initializer=_lower_priority
            )
        drawn = [
            self._workers.submit(_write_pickled_figure, data, str(folder), stem, tuple(formats))
            for stem, data in _pickle_and_close(figures).items()
        ]

        def wait() -> list[Path]:
            paths = [p for future in drawn for p in future.result()]
            if then is not None:
                then()
            return paths

        return self._thread.submit(wait)

    def close(self) -> None:
        """Wait for every submitted batch, then stop the thread and the worker processes."""
        self._thread.shutdown(wait=True)
        if self._workers is not None:
            self._workers.shutdown(wait=True)

    def __enter__(self) -> FigureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
