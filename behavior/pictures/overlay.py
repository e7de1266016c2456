"""Drawing on frames: the spatial-attention heatmap, the label and score, detector boxes.

Used by `behavior live`, `behavior attention` and the notebook, so every picture of attention is drawn the
same way. Frames are uint8 RGB (H, W, 3); nothing here changes its input.
"""

from __future__ import annotations

import cv2
import numpy as np


def heatmap_overlay(
    frame: np.ndarray,
    attention: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Blend a [0, 1] attention map (h, w) over the part of `frame` the model saw (`box`: x0, y0, x1, y1;
    default the whole frame), as a JET colour map: uint8 (H, W, 3).

    All in uint8 with OpenCV (live mode draws every frame of a 768x576 source with it): the map is stretched to
    0..255 and coloured at its own resolution, the colours scaled to the box bilinearly and blended with
    `cv2.addWeighted`."""
    out = frame.copy()
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box if box is not None else (0, 0, width, height)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return out
    # Stretch the map to its own range, so that where the model looks shows whatever the absolute level.
    low, high = float(attention.min()), float(attention.max())
    scale = 255.0 / (high - low) if high - low > 1e-6 else 0.0
    levels = np.clip((attention - low) * scale + 0.5, 0, 255).astype(np.uint8)  # uint8 (h, w)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)  # uint8 (h, w, 3)
    colours = cv2.resize(colours, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)  # (y1-y0, x1-x0, 3)
    region = out[y0:y1, x0:x1]
    cv2.addWeighted(region, 1 - alpha, colours, alpha, 0.0, dst=region)
    return out


def draw_label(frame: np.ndarray, text: str, score: float | None = None, corner: str = "top") -> np.ndarray:
    """Write `text` (and the score) on a dark band at the top or bottom of the frame: uint8 (H, W, 3)."""
    out = frame.copy()
    height, width = out.shape[:2]
    caption = text if score is None else f"{text} {score:.2f}"
    scale = max(0.35, min(1.0, width / 640))
    thickness = 1 if scale < 0.6 else 2
    (text_w, text_h), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = text_h + baseline + 8
    top = 0 if corner == "top" else height - band
    out[top : top + band, : min(width, text_w + 10)] //= 3
    cv2.putText(
        out,
        caption,
        (5, top + text_h + 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return out


def draw_boxes(frame: np.ndarray, boxes: list[tuple[int, int, int, int]], colour=(0, 255, 0)) -> np.ndarray:
    """Rectangles (x0, y0, x1, y1) on a copy of the frame: uint8 (H, W, 3)."""
    out = frame.copy()
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), colour, 2)
    return out
