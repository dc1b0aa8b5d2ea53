"""scikit-learn's estimator checks on fastnn's estimators: ``check_estimator``'s whole suite,
and the two checks scikit-learn runs on its own estimators besides (parameter validation,
DataFrame column names)."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from fastnn import MLPClassifier, MLPRegressor

# max_iter=100 is what scikit-learn's own common tests give its MLPs.
ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda estimator: {})
def test_passes_check_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_bad_parameters_raise_scikit_learns_errors(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_feature_names_are_checked_like_scikit_learns(estimator):
    pytest.importorskip("pandas", reason="the check fits on a pandas DataFrame")
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
