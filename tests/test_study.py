import numpy as np
import pandas as pd
import pytest

from convstudy.claims import Check, checks_frame, verdict
from convstudy.study import (
    Analysis,
    Scale,
    Study,
    cell_seed,
    chunk_replicates,
    condition_key,
    simulate_cell,
    split_condition,
)

COND = {
    "problem": "quadratic",
    "problem.dim": 3,
    "problem.n_samples": 20,
    "optimizer": "adam",
    "optimizer.beta1": 0.8,
    "schedule": "inverse_time",
    "schedule.eta0": 0.05,
    "schedule.k0": 10.0,
    "schedule.warmup_steps": 5,
    "sampler": "replacement",
    "batch_size": 2,
    "n_steps": 30,
}


def test_cell_seed_depends_on_content_not_key_order():
    reordered = dict(reversed(list(COND.items())))
    assert cell_seed(0, COND) == cell_seed(0, reordered)
    assert cell_seed(0, COND) != cell_seed(1, COND)
    assert cell_seed(0, COND) != cell_seed(0, {**COND, "batch_size": 3})
    assert 0 <= cell_seed(0, COND) < 2**63


@pytest.mark.parametrize("bad", [{"a": [1]}, {"a": float("nan")}, {}, {"a": {"b": 1}}])
def test_conditions_must_be_flat_json_scalars(bad):
    with pytest.raises(TypeError, match="(?i)condition"):
        condition_key(bad)


def test_simulate_cell_reads_the_namespaced_keys():
    frame = simulate_cell(COND, seed=3, replicates=[0, 1])
    assert frame.attrs["optimizer"] == "adam"
    assert frame.attrs["optimizer.beta1"] == 0.8
    assert frame.attrs["schedule"] == "warmup+inverse_time"
    assert frame.attrs["batch_size"] == 2 and frame.attrs["sampler"] == "replacement"
    assert set(frame.replicate) == {0, 1}
    assert split_condition(COND, "schedule") == {"eta0": 0.05, "k0": 10.0, "warmup_steps": 5}


def test_chunked_replicates_give_the_same_rows():
    whole = simulate_cell(COND, seed=3, replicates=range(5))
    parts = [simulate_cell(COND, seed=3, replicates=c) for c in chunk_replicates(5, 2)]
    pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))
    assert [c.tolist() for c in chunk_replicates(5, 2)] == [[0, 1], [2, 3], [4]]


def test_duplicate_conditions_are_rejected():
    study = Study(
        name="dup",
        title="t",
        description="d",
        conditions=lambda s: [COND, dict(COND)],
        analyze=lambda runs, s: Analysis(),
    )
    with pytest.raises(ValueError, match="twice"):
        study.grid(study.scale(quick=True))
    with pytest.raises(ValueError, match="'replicates' parameter of dup"):
        study.scale(replicates=0)


@pytest.mark.parametrize(
    "ci, expected, result",
    [
        ((-1.05, -0.95), (-1.1, -0.9), "reproduced"),
        ((-0.8, -0.7), (-1.1, -0.9), "not reproduced"),
        ((-1.0, -0.8), (-1.1, -0.9), "inconclusive"),
        ((0.1, 0.2), (0.0, np.inf), "reproduced"),
        ((np.nan, np.nan), (0.0, 1.0), "inconclusive"),
    ],
)
def test_verdict_follows_from_the_intervals(ci, expected, result):
    assert verdict(*ci, *expected) == result


def test_checks_frame_has_verdict_column():
    check = Check("x", 2, "s", "src", "q", "about -1", -1.1, -0.9, -1.0, -1.05, -0.97, 200)
    frame = checks_frame([check])
    assert frame.loc[0, "verdict"] == "reproduced"
    with pytest.raises(ValueError, match="ordered"):
        verdict(1.0, 0.0, 0.0, 1.0)


def _labelled_study(label: str) -> Study:
    def conditions(scale):
        return [{**COND, "method": label}, {**COND, "batch_size": 3, "method": label + "-b3"}]

    return Study(
        name="labelled",
        title="t",
        description="d",
        conditions=conditions,
        analyze=lambda runs, s: Analysis(),
        labels=("method",),
    )


def test_renaming_a_label_changes_no_seed_and_no_number(tmp_path):
    from convstudy.runner import compute_runs

    scale = Scale(quick=True, replicates=3, seed=5)
    a, computed_a, _ = compute_runs(_labelled_study("adam"), scale, cache_dir=tmp_path)
    b, computed_b, cached_b = compute_runs(
        _labelled_study("Adam (beta1 0.8)"), scale, cache_dir=tmp_path
    )
    assert computed_a == 2 and computed_b == 0 and cached_b == 2  # same cache keys
    assert a["method"].iloc[0] == "adam" and b["method"].iloc[0] == "Adam (beta1 0.8)"
    pd.testing.assert_frame_equal(a.drop(columns="method"), b.drop(columns="method"))
    # a parameter, unlike a label, does change the numbers
    c, computed_c, _ = compute_runs(
        _labelled_study("adam"), Scale(True, 3, seed=6), cache_dir=tmp_path
    )
    assert computed_c == 2 and not np.allclose(a["loss"], c["loss"])


def test_labels_must_be_keys_and_duplicates_ignore_labels():
    with pytest.raises(TypeError, match="labels"):
        Study(
            name="x",
            title="t",
            description="d",
            conditions=lambda s: [COND],
            analyze=lambda r, s: Analysis(),
            labels="method",
        )
    study = Study(
        name="x",
        title="t",
        description="d",
        conditions=lambda s: [{**COND, "m": "a"}, {**COND, "m": "b"}],
        analyze=lambda r, s: Analysis(),
        labels=("m",),
    )
    with pytest.raises(ValueError, match="twice"):
        study.grid(study.scale(quick=True))


def test_named_grids_give_one_frame_each_without_padding():
    from convstudy.runner import compute_runs

    def other(condition, seed, replicates):
        return pd.DataFrame({"replicate": np.asarray(replicates), "value": condition["x"] * 1.0})

    study = Study(
        name="grids",
        title="t",
        description="d",
        conditions=lambda s: {"curves": [COND], "values": [{"x": 1}, {"x": 2}]},
        compute={"curves": simulate_cell, "values": other},
        analyze=lambda runs, s: Analysis(),
    )
    runs, computed, _ = compute_runs(study, Scale(True, 2))
    assert set(runs) == {"curves", "values"} and computed == 3
    assert "value" not in runs["curves"] and "loss" not in runs["values"]
    assert runs["values"]["value"].tolist() == [1.0, 1.0, 2.0, 2.0]
    bad = Study(
        name="g",
        title="t",
        description="d",
        conditions=lambda s: {"a": [COND]},
        compute={"b": simulate_cell},
        analyze=lambda r, s: Analysis(),
    )
    with pytest.raises(ValueError, match="no compute function for grid 'a'"):
        compute_runs(bad, Scale(True, 2))


def test_scale_carries_the_run_seed():
    study = _labelled_study("a")
    assert study.scale(quick=True, seed=7).seed == 7
    with pytest.raises(ValueError, match="'seed' parameter of labelled"):
        study.scale(seed=-1)


def test_a_broken_variant_transforms_the_conditions_and_fails_its_check():
    from convstudy.runner import run_study
    from convstudy.stats.means import mean_ci
    from convstudy.study import Variant

    def analyze(runs, scale):
        final = runs[runs["step"] == runs["step"].max()]
        est = mean_ci(np.log10(final["subopt"].to_numpy()))
        check = Check.from_estimate(
            est, id="decreases", claim=3, statement="s", source="src", quantity="log10 f - f*",
            expected="< -3", expected_low=-np.inf, expected_high=-3.0, broken_variant="tiny-step",
        )  # fmt: skip
        return Analysis(checks=[check])

    cond = {**COND, "optimizer": "sgd", "schedule": "constant", "schedule.eta0": 0.05,
            "n_steps": 300, "sampler": "full", "batch_size": 20}  # fmt: skip
    for key in ("optimizer.beta1", "schedule.k0", "schedule.warmup_steps"):
        cond.pop(key)
    study = Study(
        name="v", title="t", description="d", conditions=lambda s: [cond], analyze=analyze,
        variants={"tiny-step": Variant("a step 1000x too small",
                                       lambda c: {**c, "schedule.eta0": c["schedule.eta0"] / 1e3})},
    )  # fmt: skip
    good = run_study(study, quick=True, replicates=3, out=None)
    bad = run_study(study, quick=True, replicates=3, out=None, variant="tiny-step")
    assert good.analysis.checks[0].verdict == "reproduced"
    assert bad.analysis.checks[0].verdict == "not reproduced"
    assert bad.scale.variant == "tiny-step" and set(bad.runs["schedule.eta0"]) == {5e-05}
    with pytest.raises(ValueError, match="broken variants \\('tiny-step'\\)"):
        study.scale(variant="nope")


def test_an_unchanged_study_skips_its_analysis_and_figures(tmp_path):
    from convstudy.runner import run_study

    calls = []

    def analyze(runs, scale):
        calls.append(1)
        fig, ax = __import__("matplotlib.pyplot").pyplot.subplots()
        ax.plot(runs["step"], runs["loss"])
        final = runs[runs["step"] == runs["step"].max()]
        from convstudy.stats.means import mean_ci

        check = Check.from_estimate(
            mean_ci(np.log10(final["subopt"].to_numpy())), id="c", claim=3, statement="s",
            source="src", quantity="q", expected="< 0", expected_low=-np.inf, expected_high=0.0,
        )  # fmt: skip
        return Analysis(figures={"loss": fig}, findings=["a finding"], checks=[check])

    study = Study(name="skip", title="t", description="d", conditions=lambda s: [COND],
                  analyze=analyze)  # fmt: skip
    first = run_study(study, quick=True, replicates=2, out=tmp_path, figure_jobs=1)
    png = tmp_path / "skip" / "figures" / "loss.png"
    stamp = png.stat().st_mtime_ns
    second = run_study(study, quick=True, replicates=2, out=tmp_path, figure_jobs=1)
    assert len(calls) == 1 and second.n_cached == 1 and png.stat().st_mtime_ns == stamp
    assert second.analysis.findings == first.analysis.findings == ["a finding"]
    # the check survives the record, -inf bound and NaN prediction included
    pd.testing.assert_frame_equal(
        checks_frame(second.analysis.checks).drop(columns="study"),
        checks_frame(first.analysis.checks).drop(columns="study"),
    )
    assert second.analysis.checks[0].expected_low == -np.inf
    # another figure format, a missing file or --fresh redo the analysis
    run_study(study, quick=True, replicates=2, out=tmp_path, formats=("png", "svg"))
    assert len(calls) == 2 and (tmp_path / "skip" / "figures" / "loss.svg").is_file()
    png.unlink()
    run_study(study, quick=True, replicates=2, out=tmp_path, formats=("png", "svg"))
    assert len(calls) == 3 and png.is_file()
    run_study(study, quick=True, replicates=2, out=tmp_path, formats=("png", "svg"), fresh=True)
    assert len(calls) == 4


def _figure_study(name: str, calls: list, fail: bool = False) -> Study:
    """A one-cell study with two figures; with ``fail`` the second has a title that only
    fails when drawn (bad mathtext)."""

    def analyze(runs, scale):
        calls.append(1)
        plt = __import__("matplotlib.pyplot").pyplot
        figures = {}
        for stem in ("loss", "subopt"):
            fig, ax = plt.subplots()
            ax.semilogy(runs["step"], runs[stem])
            figures[stem] = fig
        if fail:
            figures["subopt"].axes[0].set_title(r"$\frac{1}$")
        return Analysis(figures=figures)

    return Study(name=name, title="t", description="d", conditions=lambda s: [COND],
                 analyze=analyze)  # fmt: skip


def test_figures_drawn_in_the_background_match_those_drawn_in_place(tmp_path):
    from convstudy.output import FigureWriter
    from convstudy.runner import run_study

    calls = []
    study = _figure_study("bg", calls)
    in_place = run_study(study, quick=True, replicates=2, out=tmp_path / "a", figure_jobs=1)
    with FigureWriter(2) as writer:
        result = run_study(study, quick=True, replicates=2, out=tmp_path / "b",
                           figure_writer=writer)  # fmt: skip
        assert result.pending is not None
        result.wait()
    assert result.pending.done() and in_place.pending is None
    for stem in ("loss", "subopt"):
        a = (tmp_path / "a" / "bg" / "figures" / f"{stem}.png").read_bytes()
        b = (tmp_path / "b" / "bg" / "figures" / f"{stem}.png").read_bytes()
        assert a == b
    # the folder counts as complete once the figures are written: a rerun reuses it
    assert result.wall_time > 0 and len(calls) == 2
    run_study(study, quick=True, replicates=2, out=tmp_path / "b", figure_jobs=1)
    assert len(calls) == 2


def test_a_figure_that_fails_in_the_background_fails_its_study_and_leaves_no_key(tmp_path):
    from convstudy.output import FigureWriter
    from convstudy.runner import run_study

    calls = []
    key = tmp_path / ".cache" / "analysis" / "bad.key"
    with FigureWriter(1) as writer:
        result = run_study(_figure_study("bad", calls, fail=True), quick=True, replicates=2,
                           out=tmp_path, figure_writer=writer)  # fmt: skip
        with pytest.raises(ValueError, match="frac"):
            result.wait()
        writer.submit({}, tmp_path / "empty")  # an empty batch is fine
    assert not key.exists()  # the folder is incomplete: the next run redoes it
    assert (tmp_path / "bad" / "figures" / "loss.png").is_file()
    with pytest.raises(ValueError, match="n_jobs must be an integer >= 1. Got 0"):
        FigureWriter(0)


def test_a_bad_figure_format_is_a_one_line_error_before_anything_is_drawn(tmp_path):
    from convstudy.output import FigureWriter, write_figure

    plt = __import__("matplotlib.pyplot").pyplot
    message = r"Figure format must be one of \('png', 'svg'\)\. Got 'jpg'\."
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match=message):
        write_figure(fig, tmp_path, "f", formats=("png", "jpg"))
    assert not any(tmp_path.iterdir())  # not even the PNG
    with FigureWriter(1) as writer, pytest.raises(ValueError, match=message):
        writer.submit({"f": fig}, tmp_path, formats=("jpg",))  # in the caller, not a worker
    plt.close(fig)
