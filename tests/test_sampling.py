import numpy as np
import pytest

from convstudy.sampling import (
    SAMPLERS,
    _Stream,
    batch_stream,
    block_updates,
    check_batch_size,
    get_sampler,
)


def _draw(name, n, b, n_updates, seed=0):
    return SAMPLERS[name].draw(_Stream(np.random.default_rng(seed)), n, b, n_updates)


def test_reshuffle_sees_every_sample_once_per_epoch():
    n, b = 12, 4
    batches = _draw("reshuffle", n, b, 3 * n // b)
    for epoch in batches.reshape(3, n):
        assert sorted(epoch) == list(range(n))
    # different epochs use different permutations
    assert not np.array_equal(batches.reshape(3, n)[0], batches.reshape(3, n)[1])


def test_reshuffle_with_b_not_dividing_n_straddles_epochs():
    n, b = 10, 3
    flat = _draw("reshuffle", n, b, 10).ravel()  # 30 indices = 3 epochs
    for epoch in flat.reshape(3, n):
        assert sorted(epoch) == list(range(n))


def test_cyclic_order_is_fixed_and_wraps():
    batches = _draw("cyclic", 5, 2, 4)
    np.testing.assert_array_equal(batches.ravel(), [0, 1, 2, 3, 4, 0, 1, 2])


def test_replacement_is_uniform():
    n = 10
    idx = _draw("replacement", n, 1, 100_000).ravel()
    counts = np.bincount(idx, minlength=n)
    expected = idx.size / n
    # chi-square with 9 dof: 99.9% quantile is 27.9
    assert ((counts - expected) ** 2 / expected).sum() < 27.9


def test_stream_does_not_depend_on_other_replicates():
    rngs = lambda seeds: [np.random.default_rng(s) for s in seeds]  # noqa: E731
    alone = next(batch_stream(SAMPLERS["reshuffle"], rngs([7]), 50, 3))
    among = next(batch_stream(SAMPLERS["reshuffle"], rngs([1, 7, 9]), 50, 3))
    assert alone.shape == (block_updates(3), 1, 3)
    np.testing.assert_array_equal(alone[:, 0], among[:, 1])


def test_batch_size_validation():
    full = get_sampler("full")
    assert check_batch_size(full, 10, 10, "simulate") == 10
    with pytest.raises(ValueError, match="'batch_size' parameter of simulate must equal"):
        check_batch_size(full, 5, 10, "simulate")
    with pytest.raises(ValueError, match=r"'batch_size'.*\[1, 10\]. Got 0"):
        check_batch_size(get_sampler("reshuffle"), 0, 10, "simulate")
    with pytest.raises(ValueError, match="Got 11"):
        check_batch_size(get_sampler("reshuffle"), 11, 10, "simulate")
    with pytest.raises(ValueError, match="must be one of"):
        get_sampler("stratified")
