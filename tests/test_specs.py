"""Spec validation: tasks, requirements and families are checked when a spec is made; fit_info."""

from __future__ import annotations

import numpy as np
import pytest

from recbench.api import (
    FAMILIES,
    MetricSpec,
    ModelError,
    ModelSpec,
    PluginError,
    RatingModel,
    ReportsFitInfo,
    fit_info,
)


def _spec(**changes):
    fields = dict(name="m", family="baseline", tasks={"ranking"}, factory=lambda c, x: None)
    return ModelSpec(**{**fields, **changes})


def test_tasks_and_requires_are_stored_as_frozensets():
    spec = _spec(tasks=["ranking", "rating"], requires=["ratings"])
    assert spec.tasks == frozenset({"ranking", "rating"}) and isinstance(spec.tasks, frozenset)
    assert spec.requires == frozenset({"ratings"})


@pytest.mark.parametrize("changes, message", [
    ({"tasks": set()}, "non-empty subset"),
    ({"tasks": {"ranking", "ranknig"}}, "subset of"),
    ({"tasks": "ranking"}, "not the string"),
    ({"requires": {"rating"}}, "requires must be"),
    ({"family": "latent_factor"}, "Did you mean 'latent-factor'"),
    ({"family": "x-"}, "unknown model family"),
    ({"family": "X-Graph"}, "unknown model family"),
    ({"families": ("cnn", "transformer")}, "'transformer'"),
    ({"families": "cnn"}, "tuple of names"),
    ({"family": "hybrid", "families": ("hybrid",)}, "repeated"),
    ({"factory": None}, "callable"),
])
def test_bad_model_specs_raise_plugin_error(changes, message):
    with pytest.raises(PluginError, match=message):
        _spec(**changes)


def test_documented_and_plugin_declared_families_are_accepted():
    for family in FAMILIES:
        assert _spec(family=family).family == family
    spec = _spec(family="hybrid", families=["cnn", "x-two-tower"])
    assert spec.all_families == ("hybrid", "cnn", "x-two-tower")


def test_metric_task_is_checked():
    with pytest.raises(PluginError, match="task must be one of"):
        MetricSpec("m", "rankin", True, lambda c, k: 0.0)


class _Scores:
    def score(self, batch):
        return None


class _Ratings(_Scores):
    def predict(self, users, items):
        return None


def test_rating_capability_is_a_protocol():
    assert isinstance(_Ratings(), RatingModel) and not isinstance(_Scores(), RatingModel)


def test_fit_info_is_checked_and_copied():
    fitted = _Scores()
    assert fit_info(fitted) == {} and not isinstance(fitted, ReportsFitInfo)
    fitted.fit_info = {"epochs_run": np.int64(7), "epoch_s": np.float32(0.5), "stopped": "early"}
    assert isinstance(fitted, ReportsFitInfo)
    info = fit_info(fitted)
    assert info == {"epochs_run": 7, "epoch_s": 0.5, "stopped": "early"}
    assert type(info["epochs_run"]) is int and info is not fitted.fit_info
    for bad in ({"curve": [0.1, 0.2]}, {"done": True}, {1: 2.0}, [("a", 1)]):
        fitted.fit_info = bad
        with pytest.raises(ModelError, match="fit_info"):
            fit_info(fitted, "model 'x'")
