from __future__ import annotations

import json

import pytest

from behavior.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_export_writes_three_verified_models_with_the_contract(tiny_run, tmp_path, capsys):
    from behavior.export import read_metadata

    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert text.count("max |difference|") == 3 and "on 8 real clips" in text
    for name in ("model.onnx", "model.backbone.onnx", "model.head.onnx"):
        meta = read_metadata(tmp_path / name)
        assert json.loads(meta["behavior.class_names"]) == ["walk", "run", "wave", "sit_down", "stand_up"]
        assert meta["behavior.num_frames"] == "4" and meta["behavior.crop"] == "32"
        assert len(json.loads(meta["behavior.mean"])) == 3 and json.loads(meta["behavior.sampler"])["strategy"] == "segment"


def test_dynamic_batch_and_a_bad_export_are_caught(tiny_run, tmp_path, monkeypatch):
    import numpy as np
    import onnxruntime as ort

    import behavior.export as export_module

    report = export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(report.files[0]))
    for batch in (1, 3):
        logits = session.run(None, {"clip": np.zeros((batch, 4, 3, 32, 32), np.float32)})[0]
        assert logits.shape == (batch, 5)
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # any difference at all now counts as a mismatch
    with pytest.raises(ValueError, match="differ by up to"):
        export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m2.onnx", verify=True)
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_module.export_onnx(tiny_run / "best.pt", tmp_path / "m.pt")


def test_a_temporal_shift_model_exports_as_one_verified_model(tiny_synth, tmp_path, capsys):
    """Its frames mix inside the backbone, so there are no streaming halves to export: only the whole model."""
    from conftest import tiny_overrides

    from behavior.config import load_config
    from behavior.train import train

    train(load_config(None, tiny_overrides(tiny_synth, **{"model.temporal_shift": True, "train.epochs": 1})),
          tmp_path / "tsm")
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "tsm" / "best.pt"), "--out", str(out), "--verify"]) == 0
    assert capsys.readouterr().out.count("max |difference|") == 1
    assert out.is_file() and not (tmp_path / "model.backbone.onnx").exists()
