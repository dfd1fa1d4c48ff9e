import numpy as np
import pytest

from models.curves import curve_mean, resample_curve, validate_curve
from models.errors import CurveError


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        ([], "empty"),
        ([[0, 0]], "shape"),
        ([[0, float("nan"), 0]], "NaN"),
        ([[0, 0, float("inf")]], "NaN or infinite"),
        ([[0, -1.01, 0]], "[-1, 1]"),
        ([[-1, 0, 0]], ">= 0"),
        ([["a", 0, 0]], "numbers"),
    ],
)
def test_validate_curve_names_the_problem(curve, message):
    with pytest.raises(CurveError, match="request.curve") as error:
        validate_curve(curve, name="request.curve")
    assert message in str(error.value)


def test_resample_interpolates_and_holds_the_ends():
    curve = validate_curve([[0, -1, 0], [2, 1, 0.5]])
    va = resample_curve(curve, np.array([-1.0, 1.0, 5.0]))
    np.testing.assert_allclose(va, [[-1, 0], [0, 0.25], [1, 0.5]])


def test_curve_mean_is_time_weighted():
    curve = validate_curve([[0, 0, 0], [1, 1, 1], [3, 1, 1]])
    np.testing.assert_allclose(curve_mean(curve), [2.5 / 3, 2.5 / 3])
    np.testing.assert_allclose(curve_mean(validate_curve([[4, 0.2, -0.4]])), [0.2, -0.4])
