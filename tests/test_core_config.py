"""Configs: validated at the edge, did-you-mean on typos, canonical JSON round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recbench.config import Experiment, Protocol, canonical_json, from_mapping, load_experiment, to_dict
from recbench.errors import ConfigError


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('name = "x"\nseed = [1]\n')
    with pytest.raises(ConfigError, match=r"unknown key 'seed'.*Did you mean 'seeds'"):
        load_experiment(path)


def test_nested_errors_name_the_key_path():
    with pytest.raises(ConfigError, match=r"protocol\.ks\[1\]: expected an integer"):
        from_mapping(Experiment, {"protocol": {"ks": [10, "20"]}})
    with pytest.raises(ConfigError, match=r"ks must be >= 1"):
        from_mapping(Experiment, {"protocol": {"ks": [0]}})
    with pytest.raises(ConfigError, match=r"'rankng' is not one of"):
        from_mapping(Protocol, {"task": "rankng"})


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_experiment(tmp_path / "missing.toml")


@given(seeds=st.lists(st.integers(0, 2**31), min_size=1, max_size=4, unique=True),
       ks=st.lists(st.integers(1, 100), min_size=1, max_size=3),
       batch=st.integers(1, 4096), name=st.text(min_size=1, max_size=20))
def test_experiment_round_trips_through_canonical_json(seeds, ks, batch, name):
    exp = from_mapping(Experiment, {"name": name, "seeds": seeds,
                                    "protocol": {"ks": ks, "batch_size": batch}})
    again = from_mapping(Experiment, json.loads(canonical_json(exp)))
    assert again == exp
    assert canonical_json(again) == canonical_json(exp)
    assert to_dict(again)["protocol"]["ks"] == ks


def test_duplicate_model_labels_are_rejected():
    with pytest.raises(ConfigError, match="unique"):
        from_mapping(Experiment, {"models": [{"name": "random"}, {"name": "random"}]})
