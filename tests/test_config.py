from __future__ import annotations

from pathlib import Path

import pytest

from behavior.cli import main
from behavior.config import load_config, save_config
from behavior.errors import ConfigError

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load_and_round_trip(path, tmp_path):
    cfg = load_config(path)
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


def test_the_shipped_configs_cover_demo_ucf101_and_own_folder():
    assert {"demo", "ucf101_resnet18", "my_behaviors"} <= {p.stem for p in CONFIGS}


def test_overrides_are_typed(tmp_path):
    cfg = load_config(
        None,
        [
            "optim.lr=0.02",
            "model.head=avg",
            "sampler.num_frames=4",
            "transform.flip=false",
            "model.attention_stages=[2, 3]",
            "data.classes=[a, b]",
            "transform.mean=[0.5, 0.5, 0.5]",
        ],
    )
    assert cfg.optim.lr == 0.02 and cfg.model.head == "avg" and cfg.sampler.num_frames == 4
    assert (
        cfg.transform.flip is False
        and cfg.model.attention_stages == (2, 3)
        and cfg.data.classes == ["a", "b"]
    )
    assert cfg.transform.mean == (0.5, 0.5, 0.5)
    assert load_config(None, ["optim.lr=1"]).optim.lr == 1.0  # an int where a float is expected is fine


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hed=avg", r"unknown key 'model.hed'; valid keys in model: backbone, width"),
        ("trian.epochs=3", r"unknown key 'trian'; valid keys: data, sampler, transform, model, optim, train"),
        ("train.epochs=three", r"train.epochs: expected int, got 'three'"),
        ("train.epochs=2.5", r"train.epochs: expected int, got 2.5"),
        ("transform.flip=maybe", r"transform.flip: expected bool"),
        ("model.head=lstm", r"model.head.*lstm.*valid.*avg"),
        ("optim.name=adam", r"optim.name='adam' is unknown; valid: adamw, sgd"),
        ("sampler.strategy=random", r"valid: segment, uniform, dense"),
        ("train.epochs.max=3", r"train.epochs: expected int"),
        ("nonsense", r"expected KEY=VALUE"),
    ],
)
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  head: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    bad.write_text("model:\n  widht: 0.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'model.widht'"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_cli_exits_2_with_the_message(tmp_path, capsys):
    status = main(
        ["train", "--config", str(CONFIGS[0]), "--set", "model.hed=avg", "--out", str(tmp_path / "run")]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "unknown key 'model.hed'" in err and "valid keys in model" in err
    assert not (tmp_path / "run").exists()  # nothing was started
