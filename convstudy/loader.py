"""Finding studies: the built-in ones in ``studies/`` and a user's own study file anywhere.

A built-in study is a module of the package ``convstudy.studies`` (the top-level ``studies/``
folder) that defines ``study = Study(...)``. A user's study is any ``.py`` file defining the same;
it is imported under a unique module name derived from its absolute path, with its folder put on
``sys.path`` first (here and in every worker: :func:`convstudy.registry.add_import_folder`) so
it can import the files next to it, and registered with cloudpickle *by value*, so worker
processes (joblib, Dask) that cannot import the file by name can still unpickle its functions.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pkgutil
from pathlib import Path
from types import ModuleType

from .registry import _exec_file, _one_line, add_import_folder
from .study import Study

__all__ = ["list_studies", "load_study", "is_study_path"]

_PACKAGE = "convstudy.studies"


def list_studies() -> list[str]:
    """Names of the built-in studies (modules of ``convstudy.studies``), sorted."""
    package = importlib.import_module(_PACKAGE)
    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and not info.ispkg
    )


def is_study_path(name_or_path: str | os.PathLike) -> bool:
    """True when the argument names a file (ends in ``.py`` or contains a path separator)."""
    text = os.fspath(name_or_path)
    return text.endswith(".py") or os.sep in text or (os.altsep or os.sep) in text


def load_study(name_or_path: str | os.PathLike) -> Study:
    """The :class:`Study` named by a built-in study name or by the path of a ``.py`` file.

    Raises ``ValueError`` (one line) for an unknown name, a missing file, a file that fails to
    import, or a module without a ``study`` attribute holding a :class:`Study`.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"The 'study' parameter of load_study must be a str or a path. "
            f"Got {type(name_or_path).__name__} instead."
        )
    if is_study_path(name_or_path):
        path = Path(name_or_path).expanduser()
        return _study_of(_import_file(path), f"Study file {str(path)!r}")
    name = os.fspath(name_or_path)
    available = list_studies()
    if name not in available:
        choose = f"choose one of {', '.join(available)}" if available else "none is built in"
        raise ValueError(
            f"Unknown study {name!r}: {choose}; or give the path of a .py file defining `study`."
        )
    module_name = f"{_PACKAGE}.{name}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken built-in study: report it in one line
        raise ValueError(f"Study {name!r} failed to import: {_one_line(exc)}") from exc
    return _study_of(module, f"Study {name!r}")


def _module_name_for(path: Path) -> str:
    """A module name unique to the file's absolute path (two files named alike never clash)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"convstudy_user_{stem}_{digest}"


def _import_file(path: Path) -> ModuleType:
    """Import a study file (fresh each call) with its folder importable, and register it with
    cloudpickle by value."""
    if path.suffix != ".py":
        raise ValueError(f"Study file {str(path)!r} must be a .py file.")
    if not path.is_file():
        raise ValueError(f"Study file {str(path)!r} does not exist.")
    add_import_folder(path.resolve().parent)
    name = _module_name_for(path)
    try:
        module = _exec_file(path.resolve(), name)
    except Exception as exc:
        raise ValueError(f"Study file {str(path)!r} failed to import: {_one_line(exc)}") from exc
    _register_by_value(module)
    return module


def _register_by_value(module: ModuleType) -> None:
    """Let cloudpickle ship the module's functions by value to worker processes."""
    try:
        import cloudpickle
    except ImportError:  # serial runs need no pickling
        return
    try:
        cloudpickle.register_pickle_by_value(module)
    except ValueError:  # already registered (the same file loaded twice)
        pass


def _study_of(module: ModuleType, where: str) -> Study:
    study = getattr(module, "study", None)
    if not isinstance(study, Study):
        got = "missing" if study is None else f"of type {type(study).__name__}"
        raise ValueError(
            f"{where} must define `study = convstudy.study.Study(...)`; its `study` is {got}."
        )
    return study
