"""behavior: video action recognition with a 2D CNN, spatial attention and a temporal pooling head.

The few calls a notebook needs, one import away:

    import behavior
    cfg = behavior.load_config("configs/demo.yaml")             # a run config (Config)
    splits = behavior.load_splits(cfg.data)                      # class names and train / val / test videos
    dataset = behavior.build_dataset(splits.test, cfg, train=False)   # clip (T, C, H, W), label
    with behavior.open_video("clip.mp4") as video:               # decord, PyAV as the fallback
        frames = video.get_frames([0, 10, 20])                   # uint8 (3, H, W, 3), RGB, upright
    model = behavior.build_model(cfg.model, splits.class_names, cfg.sampler.num_frames)
    model, cfg = behavior.load_model("runs/demo/best.pt")        # a trained checkpoint, in eval mode

The package, along the data's path: `behavior.data` (reading, sampling, transforms, splits, data sets, the
loader), `behavior.models` (attention, backbones, heads, the clip classifier), `behavior.engine` (device and
precision, training, scoring, evaluation, checkpoints, metrics, calibration and rejection), `behavior.tools`
(check, predict, windows, live, export, demo, profile), `behavior.pictures` (plots, overlays, attention figures,
the gallery) and `behavior.synthetic` (the built-in data set, its unseen behaviours and long recordings). `behavior.config` and `behavior.cli` sit at the top.

These names are imported when first used, so `import behavior` (and a config error) does not load torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {  # name -> (module, attribute)
    "load_config": ("behavior.config", "load_config"),
    "load_splits": ("behavior.data.datasets", "load_splits"),
    "build_dataset": ("behavior.data.datasets", "build_dataset"),
    "open_video": ("behavior.data.video", "Video"),
    "build_model": ("behavior.models.classifier", "build_model"),
    "load_model": ("behavior.engine.checkpoint", "load_trained_model"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'behavior' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
