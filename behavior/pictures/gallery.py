"""`behavior evaluate --gallery`: an HTML page of the misclassified videos, grouped by the most confused
(true, predicted) pairs, with the T evaluation-sampled frames of each as a thumbnail strip."""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from behavior.config import Config, config_from_dict
from behavior.data.splits import VideoSample
from behavior.engine.checkpoint import load_checkpoint
from behavior.engine.scoring import SplitScores
from behavior.errors import InputNotFound, UsageError, VideoError
from behavior.pictures.frames import clip_datasets, sample_clip


@dataclass
class Prediction:
    """One row of predictions.csv: a video, its true and predicted class, and the predicted class's score."""

    path: str
    true: str
    predicted: str
    score: float

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


def read_predictions(eval_dir: str | os.PathLike) -> list[Prediction]:
    """The rows of `eval_dir/predictions.csv`, as `behavior evaluate` wrote them."""
    path = Path(eval_dir) / "predictions.csv"
    if not path.is_file():
        raise InputNotFound(f"{path}: no such file; run `behavior evaluate --out {eval_dir}` first")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "true", "predicted", "score"} <= set(rows[0]):
        raise UsageError(f"{path}: expected the columns path, true, predicted, score of `behavior evaluate`")
    return [Prediction(r["path"], r["true"], r["predicted"], float(r["score"])) for r in rows]


def predictions_from_scores(
    scores: SplitScores, samples: Sequence[VideoSample], class_names: Sequence[str]
) -> list[Prediction]:
    """One `Prediction` per scored video of `scores` (from `score_loader` over a data set of `samples`)."""
    video_scores = scores.video_scores  # (N, K)
    return [
        Prediction(samples[index].path, class_names[target], class_names[int(row.argmax())], float(row.max()))
        for index, target, row in zip(scores.indices, scores.targets, video_scores)
    ]


def confused_pairs(predictions: Sequence[Prediction]) -> list[tuple[tuple[str, str], list[Prediction]]]:
    """The misclassified videos grouped by (true, predicted), the most frequent pair first (ties: by name);
    within a pair the most confident mistakes first."""
    wrong = [p for p in predictions if not p.correct]
    counts = Counter((p.true, p.predicted) for p in wrong)
    pairs = sorted(counts, key=lambda pair: (-counts[pair], pair))
    return [
        (pair, sorted((p for p in wrong if (p.true, p.predicted) == pair), key=lambda p: -p.score))
        for pair in pairs
    ]


def html_table(header: Sequence, rows: Sequence[Sequence]) -> str:
    """An HTML <table> of `rows` under `header`, every cell escaped (floats to 3 decimals)."""

    def cell(value) -> str:
        return html.escape(f"{value:.3f}" if isinstance(value, float) else str(value))

    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def thumbnail_strip(frames: np.ndarray, height: int = 72, gap: int = 2) -> np.ndarray:
    """Frames (T, H, W, 3) side by side at `height` pixels, `gap` white pixels apart: uint8 (height, W', 3)."""
    width = max(1, int(round(frames.shape[2] * height / frames.shape[1])))
    small = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = [part for frame in small for part in (frame, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def _png_data_uri(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))  # RGB -> BGR for OpenCV
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _config_of_evaluation(eval_dir: Path) -> Config:
    metrics_path = eval_dir / "metrics.json"
    if not metrics_path.is_file():
        raise InputNotFound(f"{metrics_path}: no such file; pass cfg= or run `behavior evaluate` first")
    checkpoint = json.loads(metrics_path.read_text()).get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        raise InputNotFound(
            f"{metrics_path} names the checkpoint {checkpoint!r}, which is not there (from "
            "this folder); pass cfg= (the run's config) to draw the thumbnails"
        )
    return config_from_dict(load_checkpoint(checkpoint)["config"])


def _views_of_evaluation(eval_dir: Path) -> int | None:
    metrics_path = eval_dir / "metrics.json"
    return json.loads(metrics_path.read_text()).get("num_views") if metrics_path.is_file() else None


_GALLERY_STYLE = """
.behavior-gallery { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.behavior-gallery table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
.behavior-gallery th, .behavior-gallery td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; }
.behavior-gallery .clip { margin: 0.4em 0 1em; }
.behavior-gallery .clip img { display: block; image-rendering: auto; border: 1px solid #999; }
.behavior-gallery .true { color: #1a7f37; font-weight: bold; }
.behavior-gallery .predicted { color: #c62828; font-weight: bold; }
.behavior-gallery .note { color: #666; font-size: 90%; }
"""


def misclassified_gallery(
    source: str | os.PathLike | SplitScores,
    out_html: str | os.PathLike,
    cfg: Config | None = None,
    samples: Sequence[VideoSample] | None = None,
    class_names: Sequence[str] | None = None,
    max_per_pair: int = 8,
    thumbnail_height: int = 72,
) -> Path:
    """Write an HTML page of the misclassified videos, grouped by (true, predicted) pair, most frequent first,
    each with a strip of its T evaluation-sampled frames (base64 PNGs inside the page), its true and predicted
    class and the score.

    `source`: the folder `behavior evaluate` wrote (predictions.csv; the config comes from the checkpoint that
    metrics.json names, unless `cfg` is given), or the `SplitScores` of a data set of `samples`, with
    `class_names` and `cfg`. At most `max_per_pair` videos are drawn per pair (the most confident mistakes)."""
    out_html = Path(out_html)
    if isinstance(source, SplitScores):
        if samples is None or class_names is None or cfg is None:
            raise UsageError(
                "misclassified_gallery(SplitScores, ...) also needs samples=, class_names= and cfg="
            )
        predictions = predictions_from_scores(source, samples, class_names)
        num_views = source.clip_scores.shape[1]
        title = "Misclassified videos"
    else:
        predictions = read_predictions(source)
        cfg = cfg or _config_of_evaluation(Path(source))
        num_views = _views_of_evaluation(Path(source)) or cfg.sampler.num_views
        title = f"Misclassified videos: {Path(source).name}"
    if max_per_pair < 1:
        raise UsageError(f"max_per_pair must be >= 1, got {max_per_pair}")
    pairs = confused_pairs(predictions)
    num_wrong = sum(len(videos) for _, videos in pairs)
    shown = [p for _, videos in pairs for p in videos[:max_per_pair]]
    # The views the evaluation scored (`--views` may have changed them); the strip shows the first.
    _, eval_set = clip_datasets(
        replace(cfg, sampler=replace(cfg.sampler, num_views=num_views)),
        [VideoSample(p.path, -1) for p in shown],
    )
    num_frames = cfg.sampler.num_frames
    strips: dict[
        int, tuple[str | None, str]
    ] = {}  # position in `shown` -> (data URI or None, frames or error)
    for i in range(len(shown)):
        try:
            sampled = sample_clip(eval_set, i)
        except (VideoError, FileNotFoundError, IndexError) as exc:
            strips[i] = (None, f"cannot be decoded: {exc}")
            continue
        strips[i] = (
            _png_data_uri(thumbnail_strip(sampled.frames[:num_frames], thumbnail_height)),
            "frames " + ", ".join(str(v) for v in sampled.indices[0]),
        )

    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{num_wrong} of {len(predictions)} videos misclassified. Pairs of (true, predicted) class, the "
        f"most frequent first; within a pair the most confident mistakes first (at most {max_per_pair} "
        f"drawn). Each strip shows the {num_frames} frames the evaluation sampler ({cfg.sampler.strategy}"
        f"{f', view 1 of {num_views}' if num_views > 1 else ''}) picks, whole frames before the centre "
        "crop.</p>",
    ]
    if not pairs:
        parts.append("<p>No misclassified videos.</p>")
    else:
        rows = [
            (f'<a href="#pair-{k}">{html.escape(true)} &rarr; {html.escape(predicted)}</a>', len(videos))
            for k, ((true, predicted), videos) in enumerate(pairs, 1)
        ]
        parts.append(
            "<table><thead><tr><th>true &rarr; predicted</th><th>videos</th></tr></thead><tbody>"
            + "".join(f"<tr><td>{link}</td><td>{count}</td></tr>" for link, count in rows)
            + "</tbody></table>"
        )
    position = 0
    for k, ((true, predicted), videos) in enumerate(pairs, 1):
        parts.append(
            f'<h2 id="pair-{k}">true <span class="true">{html.escape(true)}</span>, predicted '
            f'<span class="predicted">{html.escape(predicted)}</span>: {len(videos)} video'
            f"{'s' if len(videos) != 1 else ''}</h2>"
        )
        for p in videos[:max_per_pair]:
            uri, detail = strips[position]
            position += 1
            name = html.escape(Path(p.path).name)
            image = (
                f'<img src="{uri}" alt="{name}: the sampled frames" title="{html.escape(p.path)}">'
                if uri
                else ""
            )
            parts.append(
                f'<div class="clip">{image}<div><b>{name}</b>: true <span class="true">'
                f'{html.escape(p.true)}</span>, predicted <span class="predicted">'
                f"{html.escape(p.predicted)}</span>, score {p.score:.2f} "
                f'<span class="note">({html.escape(detail)})</span></div></div>'
            )
        if len(videos) > max_per_pair:
            parts.append(f'<p class="note">and {len(videos) - max_per_pair} more (see predictions.csv)</p>')
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>'
        + html.escape(title)
        + "</title><style>"
        + _GALLERY_STYLE
        + '</style></head>\n<body><div class="behavior-gallery">\n'
        + "\n".join(parts)
        + "\n</div></body></html>\n"
    )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    return out_html
