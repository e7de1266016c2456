from __future__ import annotations

import json

from conftest import tiny_overrides

from behavior.tools.demo import run_demo


def test_the_demo_compares_the_two_shifts_side_by_side(tiny_synth, tmp_path, capsys):
    overrides = tiny_overrides(
        tiny_synth, **{"train.epochs": 1, "data.cache_dir": str(tmp_path / "cache"), "train.cpu_bf16": False}
    )
    assert run_demo("configs/demo.yaml", overrides, tmp_path / "run", compare_shift=True) == 0
    text = capsys.readouterr().out
    table = text[text.index("shift     test top-1") :].splitlines()
    assert table[1].startswith("two_way") and table[1].endswith("4 (the whole clip)")
    assert table[2].startswith("online") and table[2].endswith("  1")
    figures = json.loads((tmp_path / "run" / "demo.json").read_text())["shifts"]
    assert set(figures) == {"two_way", "online"} and 0 <= figures["online"]["test_top1"] <= 1
    online = json.loads((tmp_path / "run" / "shift-online" / "eval-test" / "metrics.json").read_text())
    assert online["top1"] == figures["online"]["test_top1"]
