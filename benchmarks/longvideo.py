"""Long synthetic videos of known content: synthetic clips of the five behaviours rendered back to back.

`long_video(folder, seconds)` writes `long-<seconds>s.mp4` (H.264, the generator's default size and frame rate)
once, with `long-<seconds>s.json` beside it naming the behaviour of every segment; later calls reuse the file.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np

from behavior.data.writer import VideoWriter
from behavior.synthetic import CLASSES, draw_clip_spec, generate_dataset, render_clip

_DEFAULTS = inspect.signature(generate_dataset).parameters
SIZE: tuple[int, int] = _DEFAULTS["size"].default  # (W, H): the synthetic set's frame size
FPS: int = _DEFAULTS["fps"].default


def long_video(folder: Path, seconds: float, difficulty: str = "medium", seed: int = 0) -> Path:
    """A video of at least `seconds`, clip after clip (class, group and clip drawn from `seed`)."""
    path = folder / f"long-{seconds:g}s.mp4"
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.mp4")
    rng = np.random.default_rng(seed)
    segments, written = [], 0
    with VideoWriter(partial, fps=FPS) as writer:
        clip = 0
        while written < seconds * FPS:
            clip += 1
            label = str(rng.choice(CLASSES))
            spec = draw_clip_spec(
                label,
                group=int(rng.integers(1, 26)),
                clip=clip,
                difficulty=difficulty,
                seed=seed,
                size=SIZE,
                fps=FPS,
            )
            frames = render_clip(spec)  # uint8 (T, H, W, 3)
            for frame in frames:
                writer.write(frame)
            segments.append(
                {"start_s": written / FPS, "end_s": (written + len(frames)) / FPS, "label": label}
            )
            written += len(frames)
    os.replace(partial, path)
    path.with_suffix(".json").write_text(
        json.dumps({"fps": FPS, "size": SIZE, "frames": written, "segments": segments}, indent=1) + "\n"
    )
    return path
