import numpy as np
import pytest

from convstudy._validation import check_array, check_option, check_scalar


def test_check_scalar_message_shape():
    with pytest.raises(ValueError) as info:
        check_scalar(-0.1, "lr", "sgd", low=0.0)
    assert str(info.value) == (
        "The 'lr' parameter of sgd must be a float in the range (0, inf). Got -0.1 instead."
    )


@pytest.mark.parametrize("value", [True, "1", None, [1.0]])
def test_check_scalar_rejects_non_numbers(value):
    with pytest.raises(TypeError, match="'x' parameter of f"):
        check_scalar(value, "x", "f")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_check_scalar_rejects_non_finite(value):
    with pytest.raises(ValueError, match="Got"):
        check_scalar(value, "x", "f")


def test_check_scalar_closed_ends_and_ints():
    assert check_scalar(0, "k", "f", kind=int, low=0, closed="left") == 0
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_scalar(0.0, "p", "f", low=0.0, high=1.0, closed="right")
    with pytest.raises(TypeError, match="an int"):
        check_scalar(1.5, "k", "f", kind=int)
    assert isinstance(check_scalar(np.int32(3), "k", "f", kind=int), int)


def test_check_option_and_array():
    with pytest.raises(ValueError, match=r"one of \{'a', 'b'\}. Got 'c'"):
        check_option("c", "mode", "f", ["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(\*, 3\). Got shape \(2, 2\)"):
        check_array(np.ones((2, 2)), "w", "f", shape=(None, 3))
    with pytest.raises(ValueError, match="1 non-finite"):
        check_array([1.0, np.inf], "w", "f")
    with pytest.raises(TypeError, match="array-like"):
        check_array([1.0, "x"], "w", "f")
