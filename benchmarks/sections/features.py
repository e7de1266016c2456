"""The feature cache: small data on a CPU with a frozen backbone.

1. Wall time and test top-1 of training on cached features against full fine-tuning and against training from
   scratch, at 40 clips per class (synthetic, medium), and on the real-footage task of the
   transfer section. Arms: the head alone on cached features (the whole EfficientNet-Lite0 frozen, pooled
   features), my_behaviors.yaml's recipe (stages up to 4 frozen and cached, the rest fine-tuned), the whole
   pretrained network fine-tuned, and the demo's from-scratch recipe. Trimmed for time (this section and the
   transfer section share about an hour on a 2-core machine shared with other jobs): the issue's 20 and 140 clips
   per class are left out, the whole network is not fine-tuned on real footage, and the my_behaviors.yaml and
   from-scratch arms are the transfer section's own runs (same configs, same data; read, not repeated).
2. Cold extraction against a warm epoch, and the cache's size per video-minute on disk (the 40-clip set).
3. What the cache gives up: the same frozen model trained on cached features (the centre crop and its mirror;
   the transfer section's run) and without the cache (random crops every epoch), at equal epochs.
4. Adding a sixth behaviour (`jump`, drawn in the same looks) to a five-class run: time to the new model with
   `--init-from`, the old classes' accuracy before and after, the new class's recall.

Resumable: each training run keeps its folder and a result.json under the work folder.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from harness import REAL_CLIPS, REPO, Settings, section_result, synthetic_set, table, target

from behavior.config import load_config
from behavior.data.datasets import load_splits
from behavior.data.feature_cache import feature_source, fill
from behavior.data.writer import write_video
from behavior.engine.evaluate import evaluate_checkpoint
from behavior.engine.train import train
from behavior.models.classifier import build_model
from behavior.synthetic import draw_clip_spec, render_clip
from sections.transfer import (
    EPOCHS,
    REAL_EPOCHS,
    SMALL,
    UNSEEN_CLIPS,
    UNSEEN_SEED,
    real_arm,
    real_sets,
    real_windows,
    synthetic_arm,
    unseen_evaluations,
    unseen_looks,
)

TITLE = "Feature cache: a frozen backbone on a CPU"
SIZES = (40,)  # clips per class; the 20 and 140 (the demo's size) left out for time
MY = REPO / "configs" / "my_behaviors.yaml"
HEAD_ONLY = "head on cached features (whole backbone frozen)"
STAGE4 = "my_behaviors.yaml: stages 1-4 frozen and cached"
FULL = "whole pretrained network fine-tuned"
SCRATCH = "from scratch (demo recipe)"
HEAD_ONLY_SETS = ["model.freeze=backbone", "model.attention=none", "train.class_balance=none"]
ARMS = {  # the arms this section trains itself: name -> (overrides of my_behaviors.yaml, epochs)
    HEAD_ONLY: ([*SMALL, *HEAD_ONLY_SETS], 30),
    FULL: ([*SMALL, "model.freeze=none", "train.class_balance=none"], EPOCHS),
}


def run_once(
    settings: Settings,
    name: str,
    config: Path,
    overrides: list[str],
    evaluations: dict,
    init_from: Path | None = None,
) -> dict:
    """Train into work/features/NAME and evaluate best.pt on `evaluations`; cached in result.json."""
    folder = settings.work / "features" / name
    result_file = folder / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    cfg = load_config(config, overrides)
    started = time.perf_counter()
    trained = train(cfg, folder / "run", init_from=init_from)
    result = {
        "train_seconds": time.perf_counter() - started,
        "epochs": cfg.train.epochs,
        "checkpoint": str(trained.best_checkpoint),
    }
    for label, arguments in evaluations.items():
        metrics = evaluate_checkpoint(
            trained.best_checkpoint, folder / f"eval-{label}", allow_failed=True, **arguments
        )
        result[label] = {
            "top1": metrics["top1"],
            "videos": metrics["num_scored"],
            "recall": {k: v["recall"] for k, v in metrics["per_class"].items()},
        }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def data_sets(data: Path, settings: Settings, cache: Path) -> list[str]:
    return [
        f"data.root={data / 'videos'}",
        f"data.splits={data / 'splits'}",
        f"data.feature_cache={cache}",
        f"data.cache_dir={settings.work / 'cache' / data.name}",
    ]


def arms_table(settings: Settings) -> list[list]:
    rows = []
    unseen = unseen_looks(settings, "medium")
    evaluations = unseen_evaluations(unseen)
    sizes = (8,) if settings.quick else SIZES
    epochs_of = (lambda epochs: 1) if settings.quick else (lambda epochs: epochs)
    for size in sizes:
        data = synthetic_set(replace(settings, clips_per_class=size), "medium")
        results = {}
        for arm, (overrides, epochs) in ARMS.items():
            epochs = epochs_of(epochs)
            cache = (
                settings.work / "features" / f"cache-{size}pc-{len(rows) + len(results)}"
            )  # cold: extraction counts
            results[arm] = run_once(
                settings,
                f"{size}pc-{arm.split()[0]}-{arm.split()[-1]}-e{epochs}",
                MY,
                [*overrides, *data_sets(data, settings, cache), f"train.epochs={epochs}"],
                evaluations,
            )
        # the transfer section's runs of the same configs on the same data
        results[STAGE4] = synthetic_arm(
            settings, "medium", size, "pretrained", epochs_of(EPOCHS), data, unseen
        )
        results[SCRATCH] = synthetic_arm(settings, "medium", size, "scratch", epochs_of(EPOCHS), data, unseen)
        for arm in (HEAD_ONLY, STAGE4, FULL, SCRATCH):
            if arm in results:
                result = results[arm]
                rows.append(
                    [
                        f"synthetic, {size} clips per class",
                        arm,
                        result["epochs"],
                        result["train_seconds"],
                        result["test"]["top1"],
                        result["unseen"]["top1"],
                    ]
                )
    if REAL_CLIPS.is_dir():
        folder = real_windows(settings)
        cache = settings.work / "features" / "cache-real-head"
        epochs = epochs_of(ARMS[HEAD_ONLY][1])
        real = {
            f"{HEAD_ONLY}, 112 px": run_once(
                settings,
                f"real-head-112px-e{epochs}",
                MY,
                [
                    *HEAD_ONLY_SETS,
                    *real_sets(settings, folder),
                    "data.cache_dir=",
                    f"data.feature_cache={cache}",
                    f"train.epochs={epochs}",
                ],
                {"test": {}},
            ),
        }
        # the transfer section's runs
        first = 1 if settings.quick else REAL_EPOCHS
        real[f"{STAGE4}, 112 px"] = real_arm(settings, "pretrained (my_behaviors.yaml, 112 px)", first)
        real[f"{SCRATCH}, 64 px"] = real_arm(settings, "from scratch (demo recipe, 64 px)", first)
        for arm, result in real.items():
            rows.append(
                [
                    "real footage (transfer section's task)",
                    arm,
                    result["epochs"],
                    result["train_seconds"],
                    result["test"]["top1"],
                    None,
                ]
            )
    return rows


def extraction_table(settings: Settings) -> list[list]:
    """Cold extraction of a set's training videos against one warm epoch of head training, and the disk size."""
    data = synthetic_set(replace(settings, clips_per_class=8 if settings.quick else 40), "medium")
    cache = settings.work / "features" / "cache-extraction"
    shutil.rmtree(cache, ignore_errors=True)
    overrides = [*ARMS[HEAD_ONLY][0], *data_sets(data, settings, cache)]
    cfg = load_config(MY, overrides)
    splits = load_splits(cfg.data, seed=0)
    model = build_model(cfg.model, splits.class_names, cfg.sampler.num_frames)
    source = feature_source(cfg, model)
    started = time.perf_counter()
    fill(source, splits.train, cfg.data.num_workers, progress=False)
    cold = time.perf_counter() - started
    one_epoch = run_once(
        settings, "warm-epoch", MY, [*overrides, "train.epochs=1", "data.val_fraction=0"], {}
    )
    minutes = 0.0
    for sample in splits.train:
        entry = source.cache.read(sample.path)
        minutes += entry.info.duration_s / 60
    size = sum(p.stat().st_size for p in source.cache.folder.rglob("*") if p.is_file())
    warm = one_epoch["train_seconds"]
    return [
        ["cold extraction of the training videos (decode, transform, embed, write)", cold, len(splits.train)],
        ["one warm epoch of head training on them (run start-up included)", warm, len(splits.train)],
        [
            "cache on disk, MB per video-minute (2 crops per frame, float16, 1280 features)",
            size / 2**20 / minutes,
            round(minutes, 2),
        ],
    ]


def augmentation_table(settings: Settings) -> list[list]:
    size = 8 if settings.quick else 40
    data = synthetic_set(replace(settings, clips_per_class=size), "medium")
    unseen = unseen_looks(settings, "medium")
    epochs = 1 if settings.quick else EPOCHS
    results = {
        # the transfer section's run: my_behaviors.yaml's recipe with its feature cache
        "cached: centre crop and its mirror": synthetic_arm(
            settings, "medium", size, "pretrained", epochs, data, unseen
        ),
        "not cached: random crops and flips every epoch": run_once(
            settings,
            f"augment-uncached-{size}pc",
            MY,
            [
                *SMALL,
                "model.freeze=stage4",
                "train.class_balance=none",
                *data_sets(data, settings, Path("x")),
                "data.feature_cache=",
                f"train.epochs={epochs}",
            ],
            unseen_evaluations(unseen),
        ),
    }
    return [
        [label, size, epochs, result["train_seconds"], result["test"]["top1"], result["unseen"]["top1"]]
        for label, result in results.items()
    ]


def sixth_behaviour(settings: Settings) -> list[list]:
    """Five classes, then `jump` added (drawn in the same looks and groups) and trained with --init-from."""
    size = 8 if settings.quick else 40
    data = synthetic_set(replace(settings, clips_per_class=size), "medium")
    root = settings.work / "features" / f"data-six-{size}pc"  # data roots apart from the run folders
    if not (root / "jump").is_dir():
        shutil.rmtree(root, ignore_errors=True)
        for folder in (data / "videos").iterdir():
            (root / folder.name).mkdir(parents=True)
            for video in folder.iterdir():
                (root / folder.name / video.name).symlink_to(video)
        partial = root.parent / "jump.partial"
        partial.mkdir(exist_ok=True)
        specs = [s for s in (data / "videos" / "walk").iterdir()]
        for video in sorted(
            specs
        ):  # one jump clip for every walk clip: the same groups, looks and clip numbers
            group, clip = (int(part[1:]) for part in video.stem.split("_")[2:4])
            spec = draw_clip_spec("jump", group, clip, "medium", 0)
            write_video(partial / f"v_Jump_g{group:02d}_c{clip:02d}.mp4", render_clip(spec), spec.fps)
        partial.rename(root / "jump")
    five_root = root.parent / f"data-five-{size}pc"
    if not five_root.is_dir():
        partial = root.parent / f"data-five-{size}pc.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for folder in root.iterdir():
            if folder.name != "jump":
                (partial / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
        partial.rename(five_root)
    cache = settings.work / "features" / "cache-six"
    common = [*SMALL, "train.class_balance=none", "data.splits=", f"data.feature_cache={cache}"]
    epochs = 1 if settings.quick else 16
    five = run_once(
        settings,
        f"five-{size}pc",
        MY,
        [*common, f"data.root={five_root}", f"train.epochs={epochs}"],
        {"five": {}},
    )
    six_evaluations = {"six": {}}
    six = run_once(
        settings,
        f"six-{size}pc-init",
        MY,
        [*common, f"data.root={root}", f"train.epochs={max(1, epochs // 2)}"],
        six_evaluations,
        init_from=Path(five["checkpoint"]),
    )
    old = [name for name in five["five"]["recall"]]
    mean = lambda result, key, names: float(np.mean([result[key]["recall"][n] for n in names]))  # noqa: E731
    return [
        [
            "five classes, from the pretrained backbone",
            five["epochs"],
            five["train_seconds"],
            mean(five, "five", old),
            None,
        ],
        [
            "sixth class added with --init-from (cache reused: only jump embedded)",
            six["epochs"],
            six["train_seconds"],
            mean(six, "six", old),
            six["six"]["recall"]["jump"],
        ],
    ]


def run(settings: Settings) -> dict:
    tables = [
        table(
            "training on cached features against fine-tuning and training from scratch (64 px, T = 8); training s "
            "includes the cold extraction",
            ["data", "arm", "epochs", "training s", "test top-1", "unseen looks top-1"],
            arms_table(settings),
        ),
        table(
            "extraction and disk",
            ["what", "seconds or MB/min", "videos or minutes"],
            extraction_table(settings),
        ),
        table(
            "what a frozen cache gives up: random crops (my_behaviors.yaml recipe, same epochs)",
            ["features", "clips per class", "epochs", "training s", "test top-1", "unseen looks top-1"],
            augmentation_table(settings),
        ),
        table(
            "adding a sixth behaviour (jump) to a five-class run",
            ["model", "epochs", "training s", "old classes' mean recall", "jump recall"],
            sixth_behaviour(settings),
        ),
    ]
    notes = [
        f"unseen looks: {UNSEEN_CLIPS} clips per class with seed {UNSEEN_SEED} (its train split), in looks no "
        "training set here has.",
        "each arm's run starts with an empty feature cache for its training videos, so its training time includes "
        "the one-off embedding; a later run on the same videos (another head, more epochs, a new class) skips it.",
        "the my_behaviors.yaml and from-scratch rows, and the cached row of the augmentation table, are the transfer "
        "section's runs of the same configs on the same data (the transfer section's own feature cache, cold for "
        "each set's training videos); its real-footage runs train "
        f"{REAL_EPOCHS} epochs.",
        "trimmed for time: no 20- or 140-clip set; the whole network not fine-tuned on real footage; extraction "
        "measured on the 40-clip set.",
    ]
    goal = target(
        "no numeric target: wall time and accuracy of the fast path against the slow ones", None, None, None
    )
    return section_result(TITLE, goal, tables, notes)
