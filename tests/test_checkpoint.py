from __future__ import annotations

import pickle

import pytest
import torch

import behavior.checkpoint as checkpoint_module
from behavior.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this calls open(marker, "w"): code running at load time."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "class_names": ["a", "b"], "config": {"x": [1, 2]}}
    save_checkpoint(state, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_a_kill_during_the_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "model": {"w": torch.ones(1000)}}, path)
    real_save = torch.save

    def dies_halfway(obj, stream):
        real_save(obj, stream)
        stream.truncate(100)  # a partial file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(1000)}}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_checkpoint_that_runs_code_is_refused_without_side_effects(tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": checkpoint_module.FORMAT, "model": _Payload(marker)}, hostile)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="hostile.pt was refused: it holds objects that would run code"):
        load_checkpoint(hostile)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="raw.pt"):
        load_checkpoint(raw)
    assert not marker.exists()


def test_torn_foreign_and_missing_files(tmp_path):
    torn = tmp_path / "torn.pt"
    save_checkpoint({"epoch": 1}, torn)
    torn.write_bytes(torn.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="torn.pt cannot be read"):
        load_checkpoint(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a behavior checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_checkpoint(tmp_path / "absent.pt")


def test_no_unsafe_loading_anywhere_in_the_package():
    import re
    from pathlib import Path

    package = Path(checkpoint_module.__file__).parent
    for source in package.rglob("*.py"):
        text = source.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{source}: {call}"
        assert not re.search(r"(?<![\w.])eval\(", text), f"{source} calls eval()"
        assert "shell=True" not in text, f"{source} runs a shell"
