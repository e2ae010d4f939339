"""The Dask executor: a study run on a loopback LocalCluster equals the serial run, bit for bit."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import pandas as pd
import pytest
from _tiny_study import analyze_tables_only
from _tiny_study import study as tiny_study

from convstudy.runner import SerialExecutor, get_executor, run_study

distributed = pytest.importorskip("distributed")
study = replace(tiny_study, analyze=analyze_tables_only)  # no figures: this file is about tasks

from convstudy.dask_executor import DASK_MISSING, DaskExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on 127.0.0.1, no dashboard."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
        silence_logs=logging.ERROR,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def serial_runs():
    return run_study(study, out=None, executor=SerialExecutor()).runs


def test_scheduler_address_gives_the_serial_runs(cluster, serial_runs, tmp_path):
    with DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        assert executor.address == cluster.scheduler_address
        result = run_study(study, out=tmp_path, executor=executor, chunk_size=4)
    assert result.n_computed == 6 and result.n_cached == 0  # 3 conditions x 2 chunks
    pd.testing.assert_frame_equal(result.runs, serial_runs, check_exact=True)


def test_user_study_file_ships_to_the_workers_by_value(cluster, tiny_study_file, tmp_path):
    """A study file outside sys.path (its module cannot be imported by name on a worker)."""
    from convstudy.loader import load_study

    user = load_study(tiny_study_file)
    assert user.compute.__module__.startswith("convstudy_user_")
    serial = run_study(user, out=None).runs
    with DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        result = run_study(user, out=tmp_path, executor=executor, chunk_size=3)
    assert result.n_computed == 4 * 3  # 4 conditions x 3 chunks of the 8 replicates
    pd.testing.assert_frame_equal(result.runs, serial, check_exact=True)


def test_tasks_really_run_on_the_workers(cluster):
    def where(_):
        import os

        return os.getpid()

    import os

    with DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        pids = {pid for _, pid in executor.map_unordered(where, range(8))}
    with distributed.Client(cluster, set_as_default=False) as client:
        workers = set(client.run(os.getpid).values())
    assert len(workers) == 2 and pids <= workers and os.getpid() not in pids


def test_map_unordered_yields_every_index_once(cluster):
    with DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        out = dict(executor.map_unordered(lambda x: x * x, [3, 1, 4, 1, 5]))
        assert out == {0: 9, 1: 1, 2: 16, 3: 1, 4: 25}
        assert list(executor.map_unordered(abs, [])) == []


def test_local_cluster_gives_the_serial_runs_and_is_closed(serial_runs):
    executor = get_executor(jobs=1, dask_local=1)
    assert isinstance(executor, DaskExecutor) and executor.name == "dask"
    with executor:
        runs = run_study(study, out=None, executor=executor, chunk_size=3).runs
        address = executor.address
        assert address.startswith("tcp://127.0.0.1:")  # loopback only
    pd.testing.assert_frame_equal(runs, serial_runs, check_exact=True)
    assert executor.address is None
    with pytest.raises(OSError):  # the cluster it started is gone
        distributed.Client(address, timeout=1, set_as_default=False)


def test_a_failing_task_raises_with_its_condition(cluster, tmp_path):
    from dataclasses import replace

    def bad_conditions(scale):
        return [{"problem": "quadratic", "n_steps": 5, "schedule.eta0": -1.0}]

    broken = replace(study, name="broken", conditions=bad_conditions)
    with DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        with pytest.raises(Exception, match="eta0") as info:
            run_study(broken, out=tmp_path, executor=executor)
    assert "schedule.eta0" in str(info.value)  # the runner names the condition
    assert not list((tmp_path / ".cache").rglob("*.parquet"))  # failures are never cached


def test_unreachable_scheduler_is_one_line_error():
    with pytest.raises(ConnectionError, match="tcp://127.0.0.1:9") as info:
        DaskExecutor(scheduler="tcp://127.0.0.1:9", timeout=1)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"scheduler": "tcp://127.0.0.1:9", "n_workers": 2}, ValueError, "n_workers"),
        ({"n_workers": 0}, ValueError, "n_workers"),
        ({"n_workers": 1.5}, TypeError, "n_workers"),
        ({"scheduler": 8786}, TypeError, "scheduler"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=name):
        DaskExecutor(**kwargs)


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ImportError, match=r"install convstudy\[dask\]") as info:
        DaskExecutor(n_workers=1)
    assert str(info.value) == DASK_MISSING and "\n" not in DASK_MISSING


def test_cli_with_unreachable_scheduler_is_one_line_exit_2(tiny_study_file, tmp_path, capsys):
    from convstudy import cli

    status = cli.main(
        ["run", str(tiny_study_file), "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "tcp://127.0.0.1:9" in err[0]
