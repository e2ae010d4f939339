"""Shared fixtures: a tiny user study file written outside ``studies/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TINY_STUDY = Path(__file__).parent / "data" / "tiny_study.py"


def write_tiny_study(
    folder: Path,
    name: str = "tiny",
    expected: tuple[float, float] = (0.5, 1.5),
    filename: str | None = None,
) -> Path:
    """Copy ``tests/data/tiny_study.py`` into ``folder`` with its name and expected interval
    replaced; returns the new file's path."""
    source = TINY_STUDY.read_text()
    source = re.sub(r'^NAME = ".*"$', f"NAME = {name!r}", source, count=1, flags=re.M)
    source = re.sub(r"^EXPECTED_LOW = .*$", f"EXPECTED_LOW = {expected[0]!r}", source, flags=re.M)
    source = re.sub(r"^EXPECTED_HIGH = .*$", f"EXPECTED_HIGH = {expected[1]!r}", source, flags=re.M)
    path = Path(folder) / (filename or f"{name}_study.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


@pytest.fixture
def tiny_study_file(tmp_path) -> Path:
    """A tiny study whose check (mean at mu = 1 in [0.5, 1.5]) is reproduced."""
    return write_tiny_study(tmp_path / "user")


@pytest.fixture
def failing_study_file(tmp_path) -> Path:
    """A tiny study whose check expects the mean at mu = 1 in [5, 6]: not reproduced."""
    return write_tiny_study(tmp_path / "user", name="tiny_wrong", expected=(5.0, 6.0))


@pytest.fixture(scope="session")
def make_tiny_study():
    """The factory :func:`write_tiny_study`, for fixtures of a wider scope."""
    return write_tiny_study
