from __future__ import annotations

import numpy as np
import pytest

from behavior.config import SamplerConfig
from behavior.data.sampling import frame_step, pad_indices, sample_indices, sliding_windows


def cfg(**kw) -> SamplerConfig:
    return SamplerConfig(**{"time_based": False, **kw})


# (strategy, num_frames of the video, T, stride, views): every clip is in bounds, in time order, the right shape.
SHAPE_CASES = [
    ("segment", 100, 8, 1, 1),
    ("segment", 8, 8, 1, 1),
    ("segment", 1000, 16, 1, 3),
    ("segment", 9, 8, 1, 4),
    ("uniform", 100, 8, 1, 1),
    ("uniform", 8, 8, 1, 1),
    ("uniform", 37, 5, 1, 2),
    ("dense", 100, 8, 2, 1),
    ("dense", 15, 8, 2, 1),
    ("dense", 300, 8, 4, 5),
    ("dense", 16, 16, 1, 2),
]


@pytest.mark.parametrize("strategy, n, T, stride, views", SHAPE_CASES)
@pytest.mark.parametrize("train", [True, False])
def test_shape_bounds_and_order(strategy, n, T, stride, views, train):
    c = cfg(strategy=strategy, num_frames=T, stride=stride, num_views=views)
    out = sample_indices(n, c, train=train, rng=np.random.default_rng(0))
    assert out.shape == ((1 if train else views), T) and out.dtype == np.int64
    assert out.min() >= 0 and out.max() <= n - 1
    assert np.all(np.diff(out, axis=1) >= 0)


# (strategy, n, T, stride, expected evaluation clip)
EXACT_CASES = [
    ("segment", 80, 8, 1, [5, 15, 25, 35, 45, 55, 65, 75]),  # bin centres
    ("segment", 8, 8, 1, [0, 1, 2, 3, 4, 5, 6, 7]),
    ("uniform", 15, 8, 1, [0, 2, 4, 6, 8, 10, 12, 14]),  # first to last frame
    ("dense", 100, 4, 3, [45, 48, 51, 54]),  # centre window, 3 apart
    ("dense", 10, 4, 3, [0, 3, 6, 9]),  # exactly fits
]


@pytest.mark.parametrize("strategy, n, T, stride, expected", EXACT_CASES)
def test_evaluation_clips_are_exact_and_deterministic(strategy, n, T, stride, expected):
    c = cfg(strategy=strategy, num_frames=T, stride=stride)
    first = sample_indices(n, c, train=False)
    assert first[0].tolist() == expected
    assert np.array_equal(first, sample_indices(n, c, train=False))


def test_training_segments_are_random_but_stay_in_their_bins():
    c = cfg(strategy="segment", num_frames=8)
    draws = np.concatenate(
        [sample_indices(80, c, train=True, rng=np.random.default_rng(s)) for s in range(50)]
    )
    bins = np.arange(8) * 10
    assert np.all((draws >= bins) & (draws < bins + 10))
    assert len({tuple(d) for d in draws}) > 40  # really random
    same_seed = [sample_indices(80, c, train=True, rng=np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(*same_seed)


def test_training_needs_a_generator():
    with pytest.raises(ValueError, match="numpy Generator"):
        sample_indices(50, cfg(), train=True)


@pytest.mark.parametrize(
    "strategy, n, T, stride, pad, expected",
    [
        ("segment", 3, 8, 1, "repeat_last", [0, 1, 2, 2, 2, 2, 2, 2]),
        ("segment", 3, 8, 1, "loop", [0, 1, 2, 0, 1, 2, 0, 1]),
        ("uniform", 1, 4, 1, "loop", [0, 0, 0, 0]),
        ("dense", 10, 8, 2, "repeat_last", [0, 2, 4, 6, 8, 8, 8, 8]),
        ("dense", 5, 4, 2, "loop", [0, 2, 4, 0]),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_short_videos_are_padded_never_dropped(strategy, n, T, stride, pad, expected, train):
    c = cfg(strategy=strategy, num_frames=T, stride=stride, pad=pad)
    assert sample_indices(n, c, train=train, rng=np.random.default_rng(0))[0].tolist() == expected


def test_pad_indices_policies():
    assert pad_indices(np.array([4, 5]), 5, "repeat_last").tolist() == [4, 5, 5, 5, 5]
    assert pad_indices(np.array([4, 5]), 5, "loop").tolist() == [4, 5, 4, 5, 4]
    assert pad_indices(np.arange(6), 4, "loop").tolist() == [0, 1, 2, 3]


def test_multiview_clips_spread_over_the_video():
    seg = sample_indices(90, cfg(strategy="segment", num_frames=3, num_views=3), train=False)
    assert seg.tolist() == [[5, 35, 65], [15, 45, 75], [25, 55, 85]]  # each view covers the whole video
    uni = sample_indices(100, cfg(strategy="uniform", num_frames=4, num_views=2), train=False)
    assert uni[0].max() < 50 <= uni[1].min()  # one clip per half
    dense = sample_indices(100, cfg(strategy="dense", num_frames=4, stride=2, num_views=3), train=False)
    assert dense[0, 0] == 0 and dense[-1, -1] == 99 and len({tuple(r) for r in dense}) == 3


def test_time_based_sampling_follows_real_timestamps():
    # 10 s of video: 30 fps for 5 s, then 5 fps for 5 s (175 frames): uniform in time != uniform in index.
    timestamps = np.concatenate([np.arange(150) / 30, 5 + np.arange(25) / 5])
    n = len(timestamps)
    timed = sample_indices(
        n, SamplerConfig(num_frames=10, time_based=True), train=False, timestamps=timestamps
    )[0]
    assert np.allclose(timestamps[timed], np.arange(10) + 0.5, atol=0.2)
    by_index = sample_indices(
        n, SamplerConfig(num_frames=10, time_based=False), train=False, timestamps=timestamps
    )[0]
    assert (timestamps[by_index] < 5).sum() == 9  # index sampling spends 9 of 10 frames in the first half


def test_span_restricts_sampling_to_a_window():
    timestamps = np.arange(300) / 30.0  # 10 s
    c = SamplerConfig(num_frames=4, time_based=True)
    out = sample_indices(300, c, train=False, timestamps=timestamps, span=(6.0, 8.0))[0]
    assert np.all((timestamps[out] >= 6.0) & (timestamps[out] < 8.0))
    with pytest.raises(ValueError, match="empty sampling span"):
        sample_indices(300, c, train=False, timestamps=timestamps, span=(12.0, 14.0))


@pytest.mark.parametrize("strategy", ["segment", "uniform", "dense"])
def test_a_step_computed_once_per_video_picks_the_same_frames(strategy):
    """Window prediction computes the typical frame step once per video instead of once per window: every
    window's indices stay exactly those the sampler picks on its own."""
    rng = np.random.default_rng(0)
    # 10 minutes of variable frame rate: 15 fps with jitter, a 5 fps stretch, a dropped-frame gap at the end
    gaps = np.concatenate(
        [rng.uniform(0.05, 0.08, 6000), np.full(300, 0.2), [1.5], rng.uniform(0.05, 0.08, 50)]
    )
    timestamps = np.concatenate([[0.0], np.cumsum(gaps)])
    n = len(timestamps)
    c = SamplerConfig(strategy=strategy, num_frames=8, stride=2, time_based=True)
    step = frame_step(timestamps)
    windows = sliding_windows(timestamps[-1] + 0.1, 2.0, 0.7)
    assert len(windows) > 500
    for span in windows:
        alone = sample_indices(n, c, train=False, timestamps=timestamps, span=tuple(span))
        once = sample_indices(n, c, train=False, timestamps=timestamps, span=tuple(span), step=step)
        assert np.array_equal(alone, once), span


@pytest.mark.parametrize(
    "length, window, stride, expected",
    [
        (10.0, 4.0, 2.0, [[0, 4], [2, 6], [4, 8], [6, 10]]),
        (9.0, 4.0, 2.0, [[0, 4], [2, 6], [4, 8], [5, 9]]),  # the last window is pulled back to cover the tail
        (3.0, 4.0, 2.0, [[0, 3]]),  # shorter than one window
    ],
)
def test_sliding_windows_cover_the_whole_video(length, window, stride, expected):
    assert sliding_windows(length, window, stride).tolist() == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("strategy", "random", "valid: segment, uniform, dense"),
        ("pad", "zeros", "valid: repeat_last, loop"),
        ("num_frames", 0, "sampler.num_frames"),
        ("stride", 1.5, "sampler.stride"),
    ],
)
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**{field: value})
