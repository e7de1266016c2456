from __future__ import annotations

import json

import pytest

from behavior.cli import main
from behavior.errors import ExportVerificationError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_export_writes_three_verified_models_with_the_contract(tiny_run, tmp_path, capsys):
    from behavior.tools.export import read_metadata

    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert text.count("max |difference|") == 3 and "on 8 real clips" in text
    for name in ("model.onnx", "model.backbone.onnx", "model.head.onnx"):
        meta = read_metadata(tmp_path / name)
        assert json.loads(meta["behavior.class_names"]) == ["walk", "run", "wave", "sit_down", "stand_up"]
        assert meta["behavior.num_frames"] == "4" and meta["behavior.crop"] == "32"
        assert (
            len(json.loads(meta["behavior.mean"])) == 3
            and json.loads(meta["behavior.sampler"])["strategy"] == "segment"
        )


def test_dynamic_batch_and_a_bad_export_are_caught(tiny_run, tmp_path, monkeypatch):
    import numpy as np
    import onnxruntime as ort

    import behavior.tools.export as export_module

    report = export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(report.files[0]))
    for batch in (1, 3):
        logits = session.run(None, {"clip": np.zeros((batch, 4, 3, 32, 32), np.float32)})[0]
        assert logits.shape == (batch, 5)
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # any difference at all now counts as a mismatch
    with pytest.raises(ExportVerificationError, match="differ by up to"):
        export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m2.onnx", verify=True)
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m.pt")


def test_a_temporal_shift_model_exports_as_one_verified_model(tiny_synth, tmp_path, capsys):
    """Its frames mix inside the backbone, so there are no streaming halves to export: only the whole model."""
    from conftest import tiny_overrides

    from behavior.config import load_config
    from behavior.engine.train import train

    train(
        load_config(None, tiny_overrides(tiny_synth, **{"model.temporal_shift": True, "train.epochs": 1})),
        tmp_path / "tsm",
    )
    out = tmp_path / "model.onnx"
    assert (
        main(["export", "--checkpoint", str(tmp_path / "tsm" / "best.pt"), "--out", str(out), "--verify"])
        == 0
    )
    assert capsys.readouterr().out.count("max |difference|") == 1
    assert out.is_file() and not (tmp_path / "model.backbone.onnx").exists()


def test_the_metadata_carries_the_temperature_and_the_rejection_rule(tiny_confident_run, tmp_path):
    from behavior.engine.checkpoint import load_trained_model
    from behavior.tools.export import export_onnx, read_metadata

    confidence = load_trained_model(tiny_confident_run / "best.pt")[0].confidence
    report = export_onnx(tiny_confident_run / "best.pt", tmp_path / "model.onnx")
    for path in report.files:
        meta = read_metadata(path)
        assert float(meta["behavior.temperature"]) == confidence.temperature != 1.0
        assert meta["behavior.unknown_score"] == "msp"
        assert float(meta["behavior.unknown_threshold"]) == confidence.threshold
        assert "unknown" in meta["behavior.unknown_rule"] and "temperature" in meta["behavior.unknown_rule"]


def test_an_online_shift_model_exports_streaming_halves_that_carry_the_shifted_slices(
    tiny_online_run, tmp_path, capsys
):
    """Its frames look at past frames only, so it streams: the backbone takes and returns one slice per shift, and
    feeding each frame with the slices of the one before gives the whole model's logits through the head."""
    import numpy as np
    import onnxruntime as ort

    from behavior.tools.export import read_metadata

    out = tmp_path / "model.onnx"
    args = ["export", "--checkpoint", str(tiny_online_run / "best.pt"), "--out", str(out), "--verify"]
    assert main(args) == 0
    assert capsys.readouterr().out.count("max |difference|") == 3
    assert read_metadata(out)["behavior.shift"] == "online"
    backbone = ort.InferenceSession(str(tmp_path / "model.backbone.onnx"))
    head = ort.InferenceSession(str(tmp_path / "model.head.onnx"))
    whole = ort.InferenceSession(str(out))
    names = [i.name for i in backbone.get_inputs()]
    assert (
        names[0] == "frames"
        and len(names) > 1
        and names[1:] == [f"shifted_{i}" for i in range(len(names) - 1)]
    )
    clip = np.random.default_rng(0).normal(size=(2, 4, 3, 32, 32)).astype(np.float32)
    shifted = [np.zeros((2, *i.shape[1:]), np.float32) for i in backbone.get_inputs()[1:]]
    features = []
    for t in range(4):
        outputs = backbone.run(
            None, {"frames": clip[:, t]} | {f"shifted_{i}": s for i, s in enumerate(shifted)}
        )
        features.append(outputs[0])
        shifted = outputs[-len(shifted) :]
    streamed = head.run(None, {"features": np.stack(features, axis=1)})[0]  # (2, K)
    assert np.abs(streamed - whole.run(None, {"clip": clip})[0]).max() < 1e-4
