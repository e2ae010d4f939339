"""Names for everything extensible: optimizers, problems, schedules, samplers and studies.

One rule for built-ins and for user code (ARCHITECTURE principle 1): a name is either a
registered short name (``"sgd"``, or ``"lion"`` after ``register_optimizer("lion", lion)``) or an
import path ``"package.module:attribute"`` (``"my_rules:lion"``), and it resolves the same way in
the main process, in a joblib worker and on a Dask worker. A name is a parameter of a condition;
a label is presentation and never enters a seed or a cache key.

Workers are separate processes that start with a fresh interpreter: they see the built-ins, but
not what a user's module registered, and not the folders a study added to ``sys.path``. The
runner therefore ships a :class:`WorkerContext` with every task: the extra import folders and
the user modules that registered names (by module name and file). :func:`enter_context` replays
it in the worker: the folders go on ``sys.path`` and each module is imported (by name, or from
its file when it is a study file imported under a synthetic name), which re-runs its
``register_*`` calls exactly as in the main process.

Studies are found by :mod:`convstudy.loader`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

__all__ = [
    "Registry",
    "resolve_import_path",
    "WorkerContext",
    "worker_context",
    "enter_context",
    "add_import_folder",
    "user_modules",
]

T = TypeVar("T")

# user modules that registered a name: module name -> file (None when imported by name only)
_USER_MODULES: dict[str, str | None] = {}
# folders added to sys.path for user code (study folders), in the order they were added
_IMPORT_FOLDERS: list[str] = []


def _is_library_module(module_name: str) -> bool:
    """True for convstudy's own modules, which every process imports; the built-in studies
    (``convstudy.studies.*``) count as user code: a worker imports them only when told to."""
    if module_name.startswith("convstudy.studies."):
        return False
    return module_name == "convstudy" or module_name.startswith("convstudy.")


def resolve_import_path(name: str, kind: str, owner: str) -> Any:
    """The object named ``"package.module:attribute"`` (dotted attributes allowed).

    Raises ``ValueError`` (one line) when the module cannot be imported or lacks the attribute.
    """
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ValueError(
            f"The {kind!r} parameter of {owner} must be a registered name or an import path "
            f"'package.module:attribute'. Got {name!r} instead."
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(
            f"The {kind!r} parameter of {owner} names module {module_name!r}, which cannot be "
            f"imported ({_one_line(exc)}); put its folder on sys.path or next to the study file."
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"The {kind!r} parameter of {owner} names {name!r}, but module {module_name!r} "
                f"has no attribute {attr!r}."
            )
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A table of named objects of one kind, open to user code.

    ``register(name, obj)`` (or ``@register("name")``) adds an entry; ``get(name)`` returns it,
    or resolves an import path ``"module:attribute"``. Names registered from a module outside
    convstudy are remembered so that worker processes can replay the registration
    (:func:`worker_context`). Re-registering a name with a different object needs
    ``overwrite=True``; re-registering the same object (a module imported twice) is harmless.
    """

    def __init__(self, kind: str, owner: str):
        self.kind, self.owner = kind, owner
        self._table: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False):
        if not isinstance(name, str) or not name or ":" in name or not name.isprintable():
            raise ValueError(
                f"A {self.kind} name must be a non-empty str without ':' (that form is an "
                f"import path). Got {name!r} instead."
            )
        if obj is None:  # used as a decorator

            def decorator(target: T) -> T:
                self.register(name, target, overwrite=overwrite)
                return target

            return decorator
        old = self._table.get(name)
        if old is not None and old is not obj and not overwrite:
            same = getattr(old, "__qualname__", None) == getattr(obj, "__qualname__", object())
            same = same and getattr(old, "__module__", None) == getattr(obj, "__module__", None)
            if not same:  # the same definition re-imported (e.g. a study file loaded again)
                raise ValueError(
                    f"A {self.kind} named {name!r} is already registered ({old!r}); pass "
                    f"overwrite=True to replace it, or choose another name."
                )
        self._table[name] = obj
        module = getattr(obj, "__module__", None) or ""
        if module and not _is_library_module(module):
            mod = sys.modules.get(module)
            _USER_MODULES[module] = getattr(mod, "__file__", None)
        return obj

    def unregister(self, name: str) -> None:
        """Remove the entry registered as ``name`` (a ``ValueError`` when there is none)."""
        if name not in self._table:
            raise ValueError(f"No {self.kind} named {name!r} is registered.")
        del self._table[name]

    def get(self, name: str) -> T:
        """The object registered as ``name``, or the one an import path names."""
        if not isinstance(name, str):
            raise TypeError(
                f"The {self.kind!r} parameter of {self.owner} must be a str naming one of "
                f"{self.names()} or an import path 'module:attribute'. Got {name!r} instead."
            )
        if name in self._table:
            return self._table[name]
        if ":" in name:
            return resolve_import_path(name, self.kind, self.owner)
        shown = ", ".join(repr(n) for n in self.names())
        raise ValueError(
            f"The {self.kind!r} parameter of {self.owner} must be one of {{{shown}}}. Got "
            f"{name!r} instead (or give an import path 'module:attribute')."
        )

    def names(self) -> list[str]:
        return sorted(self._table)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._table)

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._table[k]) for k in self.names()]


# ---- worker processes ----------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerContext:
    """What a worker process needs to resolve user names: import folders and user modules."""

    import_folders: tuple[str, ...] = ()
    modules: tuple[tuple[str, str | None], ...] = ()


def add_import_folder(folder: str | os.PathLike) -> None:
    """Put ``folder`` on ``sys.path`` (front) here and in every worker of later runs."""
    text = str(Path(folder).resolve())
    if text not in _IMPORT_FOLDERS:
        _IMPORT_FOLDERS.append(text)
    if text not in sys.path:
        sys.path.insert(0, text)


def user_modules() -> dict[str, str | None]:
    """User modules (outside convstudy) that registered a name: module name -> file."""
    return dict(_USER_MODULES)


def worker_context() -> WorkerContext:
    """The context to replay in a worker (see :func:`enter_context`)."""
    return WorkerContext(tuple(_IMPORT_FOLDERS), tuple(sorted(_USER_MODULES.items())))


_ENTERED: set[WorkerContext] = set()


def enter_context(context: WorkerContext) -> None:
    """Replay a :class:`WorkerContext` in this process (once per distinct context)."""
    if context in _ENTERED:
        return
    for folder in context.import_folders:
        add_import_folder(folder)
    for name, file in context.modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            if file is None:
                raise
            _exec_file(Path(file), name)
    _ENTERED.add(context)


def _exec_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{str(path)!r} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (a SyntaxError also gives its line number)."""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        text = f"{exc.msg} (line {exc.lineno})"
    else:
        text = str(exc)
    return f"{type(exc).__name__}: {' '.join(text.split())}"
