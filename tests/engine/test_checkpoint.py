from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

import behavior.engine.checkpoint as checkpoint_module
from behavior.engine.checkpoint import load_checkpoint, save_checkpoint
from behavior.errors import CheckpointError


class _Payload:
    """Unpickling this calls open(marker, "w"): code running at load time."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip(tmp_path):
    state = {
        "model": {"w": torch.arange(4.0)},
        "epoch": 3,
        "class_names": ["a", "b"],
        "config": {"x": [1, 2]},
    }
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


def test_the_temporary_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"torn")  # what SIGKILL during a write leaves
    (tmp_path / ".best.pt.k1ll3d.tmp").write_bytes(b"torn")
    save_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.pt.k1ll3d.tmp", "last.pt"]  # only its own


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


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("command", ["evaluate", "predict", "live", "export"])
def test_every_command_refuses_a_hostile_checkpoint_without_running_it(command, tmp_path, capsys):
    from behavior.cli import main

    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pt"
    torch.save(
        {"format": checkpoint_module.FORMAT, "config": {}, "class_names": ["a"], "model": _Payload(marker)},
        hostile,
    )
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 100)  # never opened: the checkpoint is refused first
    args = {
        "evaluate": ["--out", str(tmp_path / "eval")],
        "predict": [str(video), "--out", str(tmp_path / "p.csv")],
        "live": ["--source", str(video), "--out", str(tmp_path / "o.mp4")],
        "export": ["--out", str(tmp_path / "m.onnx")],
    }
    assert main([command, "--checkpoint", str(hostile), *args[command]]) == 2
    err = capsys.readouterr().err
    assert f"behavior {command}: error: checkpoint {hostile} was refused" in err and "Traceback" not in err
    assert not marker.exists()
    assert (
        not (tmp_path / "p.csv").exists()
        and not (tmp_path / "eval").exists()
        and not (tmp_path / "o.mp4").exists()
    )


def _calls(text: str, name: str) -> list[str]:
    """The full text of every call of `name(...)` in `text`, nested parentheses included; a method or function
    of that name being defined (`def eval(self)`) is not a call."""
    calls = []
    for match in re.finditer(rf"(?<![\w.])(?<!def ){re.escape(name)}\(", text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        calls.append(text[match.start() : end + 1])
    return calls


def unsafe_calls(text: str) -> list[str]:
    """What in `text` would unpickle, evaluate or shell out: torch.load without weights_only=True, yaml loading
    without the safe loader, eval/exec, pickle/marshal/shelve loads, shell=True, os.system, os.popen."""
    found = [c for c in _calls(text, "torch.load") if "weights_only=True" not in c]
    found += [c for c in _calls(text, "yaml.load") + _calls(text, "yaml.load_all") if "SafeLoader" not in c]
    for name in (
        "eval",
        "exec",
        "pickle.load",
        "pickle.loads",
        "pickle.Unpickler",
        "marshal.loads",
        "shelve.open",
        "yaml.unsafe_load",
        "yaml.full_load",
        "os.system",
        "os.popen",
        "jsonpickle.decode",
    ):
        found += _calls(text, name)
    found += re.findall(r".*shell\s*=\s*True.*", text) + re.findall(r".*allow_pickle\s*=\s*True.*", text)
    return found


def test_no_unsafe_loading_anywhere_in_the_package():
    package = Path(checkpoint_module.__file__).parents[1]  # behavior/
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        assert not unsafe_calls(source.read_text()), source


@pytest.mark.parametrize(
    "snippet",
    [
        "torch.load(path)",
        "torch.load(path, map_location=f(x))",
        "x = eval(text)",
        "def run(self): return eval(self.text)",
        "exec(code)",
        "pickle.loads(data)",
        "yaml.load(text, Loader=yaml.Loader)",
        "subprocess.run(cmd, shell=True)",
        "os.system('ls')",
        "np.load(f, allow_pickle=True)",
    ],
)
def test_the_check_catches_each_unsafe_call(snippet):
    assert unsafe_calls(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "torch.load(path, map_location=f(x), weights_only=True)",
        "yaml.safe_load(text)",
        "model.eval()",
        "def eval(self) -> OnnxModel:",
        "yaml.load(text, Loader=yaml.SafeLoader)",
        "evaluate(x)",
    ],
)
def test_the_check_lets_safe_calls_through(snippet):
    assert not unsafe_calls(snippet)


def test_a_checkpoint_from_before_calibration_loads_with_temperature_1_and_no_rejection(
    tiny_confident_run, tiny_synth, tmp_path
):
    from behavior.engine.checkpoint import load_trained_model
    from behavior.engine.confidence import Confidence
    from behavior.tools.predict import predict
    from behavior.tools.rows import read_rows

    state = load_checkpoint(tiny_confident_run / "best.pt")
    assert load_trained_model(tiny_confident_run / "best.pt")[0].confidence.rejects
    del state["confidence"]
    old = save_checkpoint(state, tmp_path / "old.pt")
    model, _ = load_trained_model(old)
    assert model.confidence == Confidence() and model.confidence.temperature == 1.0
    videos = sorted((tiny_synth / "videos" / "run").iterdir())[:4]
    predict(old, videos, out=tmp_path / "p.jsonl", workers=0, unknown_threshold=None)
    rows = read_rows(tmp_path / "p.jsonl")
    assert all(r["label"] != "unknown" and r["unknown_threshold"] is None for r in rows)
    assert all("unknown" not in r["labels"] for r in rows)
