"""`torch.compile` of the demo model, in its own process so that the harness can cut a compilation that hangs
or takes too long. Prints one JSON line: compile seconds, and per round the eager and compiled forward seconds and
the fp32 matmul GFLOPS, measured in turns.

    .venv/bin/python benchmarks/compile_probe.py --batch 32 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from harness import DEMO_CONFIG

from behavior.config import load_config
from behavior.models.classifier import build_model
from behavior.synthetic import CLASSES
from behavior.tools.profile import measure_matmul_gflops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    args = parser.parse_args()
    cfg = load_config(DEMO_CONFIG)
    size = cfg.transform.crop
    model = build_model(cfg.model, CLASSES, num_frames=cfg.sampler.num_frames).eval()
    clip = torch.randn(args.batch, cfg.sampler.num_frames, 3, size, size)  # (B, T, C, H, W)
    result = {"eager_s": [], "compiled_s": [], "matmul_gflops": []}
    with torch.inference_mode():
        compiled = torch.compile(model)
        started = time.perf_counter()
        compiled(clip)  # compiles
        result["compile_s"] = time.perf_counter() - started
        model(clip)  # warm-up
        compiled(clip)
        for _ in range(args.repeats):
            result["matmul_gflops"].append(measure_matmul_gflops(repeats=3))
            for name, forward in (("eager_s", model), ("compiled_s", compiled)):
                started = time.perf_counter()
                forward(clip)
                result[name].append(time.perf_counter() - started)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
