"""The sweep file's fields, one parsing step each (steering_models/sweep/config.py): every bad field raises one
SweepError naming the field, its value and the fix, before anything loads; good fields parse as written."""

from __future__ import annotations

import pytest

from steering_models.spec import SteerSpec
from steering_models.sweep import SweepError, load_sweep
from steering_models.sweep.config import parse_sweep

BASE = {"tasks": ["valuebench_ll_train"], "configs": ["unsteered"]}


@pytest.mark.parametrize(("fields", "message"), [
    ({"modle": {}}, r"field `modle`=\{\} \(sweep\) is not a sweep file field: expected .*Remove or rename `modle`"),
    ({"model": "default"}, r"`model`='default' .* must be a mapping with `pretrained: NAME_OR_DIR`"),
    ({"model": {"pretrained": 3}}, r"`model`=\{'pretrained': 3\} .* must be a mapping"),
    ({"model": {"steer": "a.yaml"}}, r"`model.steer`='a.yaml' .* is set by the sweep itself"),
    ({"model": {"batch_size": 4}}, r"`model.batch_size`=4 .*\(`batch_size` goes at the top level"),
    ({"tasks": []}, r"`tasks`=\[\] .* must be a non-empty list of lm-eval task names"),
    ({"tasks": ["a", ""]}, r"`tasks`=\['a', ''\] .* non-empty list"),
    ({"metadata": [1]}, r"`metadata`=\[1\] .* must be a mapping \(lm_eval --metadata\)"),
    ({"limit": 0}, r"`limit`=0 .* must be a positive number or null"),
    ({"limit": True}, r"`limit`=True .* positive number"),
    ({"batch_size": 0}, r"`batch_size`=0 .* must be a positive integer"),
    ({"configs_per_pass": "8"}, r"`configs_per_pass`='8' .* must be a positive integer"),
    ({"include_path": 3}, r"`include_path`=3 .* must be a folder path"),
    ({"include_path": "no/such/folder"}, r"`include_path`='no/such/folder' .* is not a folder"),
    ({"apply_chat_template": "yes"}, r"`apply_chat_template`='yes' .* must be true or false"),
    ({"share_prefix": 1}, r"`share_prefix`=1 .* must be true or false"),
    ({"share_trunk": None}, r"`share_trunk`=None .* must be true or false"),
    ({"configs": []}, r"`configs`=\[\] .* must be a non-empty list of steering configs"),
    ({"configs": [42]}, r"`configs`=42 \(sweep, configs\[0\]\) is not a config: expected `unsteered`"),
    ({"configs": ["unsteered", "unsteered"]}, r"two configs named 'unsteered' \(configs 0 and 1"),
    ({"ray": {"workers": 0}}, r"`ray.workers`=0 .* must be an integer >= 1"),
])
def test_each_bad_field_is_named(fields, message):
    with pytest.raises(SweepError, match=message):
        parse_sweep({**BASE, **fields}, "sweep", None, None)


def test_not_a_mapping():
    with pytest.raises(SweepError, match=r"sweep file \(sweep\) must be a mapping with `model`, `tasks` and "
                                         r"`configs`; got list"):
        parse_sweep(["unsteered"], "sweep", None, None)


def test_the_first_bad_field_in_file_order_is_the_one_named():
    """Fields are checked in a fixed order (model, tasks, ..., configs last: it reads steering files)."""
    with pytest.raises(SweepError, match="`tasks`"):
        parse_sweep({"tasks": [], "batch_size": 0, "configs": [42]}, "sweep", None, None)
    with pytest.raises(SweepError, match="`share_trunk`"):
        parse_sweep({**BASE, "share_trunk": "no", "configs": [42]}, "sweep", None, None)


def test_good_fields_parse_as_written(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "sweep.yaml").write_text(
        "model: {pretrained: ./model, dtype: float32}\n"
        "tasks: valuebench_ll_train\n"
        "metadata: {num_roles: 3}\n"
        "limit: 0.5\n"
        "batch_size: 4\n"
        "configs_per_pass: 2\n"
        "include_path: tasks\n"
        "apply_chat_template: true\n"
        "share_prefix: false\n"
        "share_trunk: false\n"
        "ray: {workers: 2}\n"
        "configs: [unsteered, {name: empty, interventions: []}]\n")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    assert sweep.model == {"pretrained": str((tmp_path / "model").resolve()), "dtype": "float32"}
    assert sweep.hf_kwargs == {"dtype": "float32"}
    assert sweep.tasks == ("valuebench_ll_train",)
    assert sweep.metadata == {"num_roles": 3} and sweep.limit == 0.5
    assert (sweep.batch_size, sweep.configs_per_pass) == (4, 2)
    assert sweep.include_path == str((tmp_path / "tasks").resolve())
    assert (sweep.apply_chat_template, sweep.share_prefix, sweep.share_trunk) == (True, False, False)
    assert sweep.ray.workers == 2
    assert [c.name for c in sweep.configs] == ["unsteered", "empty"]
    assert all(isinstance(c, SteerSpec) and c.is_empty for c in sweep.configs)
    assert sweep.path == str((tmp_path / "sweep.yaml").resolve())


def test_defaults():
    sweep = parse_sweep(BASE, "sweep", None, None)
    assert sweep.model == {"pretrained": "default"} and sweep.pretrained == "default"
    assert (sweep.metadata, sweep.limit, sweep.include_path) == ({}, None, None)
    assert (sweep.batch_size, sweep.configs_per_pass) == (8, 8)
    assert (sweep.apply_chat_template, sweep.share_prefix, sweep.share_trunk) == (False, True, True)
