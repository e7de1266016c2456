from __future__ import annotations

import numpy as np
import pytest

from behavior.tools.segments import NO_CLASS, Segment, segments_from_windows, smooth_scores, window_extents


def one_hot(labels, k=3, confidence=0.8):
    scores = np.full((len(labels), k), (1 - confidence) / (k - 1))
    scores[np.arange(len(labels)), labels] = confidence
    return scores


def test_windows_tile_the_video():
    spans = np.array([[0, 2], [1, 3], [2, 4], [3, 5]], dtype=float)
    assert window_extents(spans, 5.0).tolist() == [[0, 1.5], [1.5, 2.5], [2.5, 3.5], [3.5, 5.0]]


def test_adjacent_windows_with_one_label_are_joined():
    spans = np.stack([np.arange(8), np.arange(8) + 2], axis=1).astype(
        float
    )  # 2 s windows, 1 s apart, 9 s video
    segments = segments_from_windows(spans, one_hot([0, 0, 0, 1, 1, 1, 2, 2]), duration=9.0)
    assert [(s.start_s, s.end_s, s.label) for s in segments] == [(0.0, 3.5, 0), (3.5, 6.5, 1), (6.5, 9.0, 2)]
    assert segments[0].score == pytest.approx(0.8)


def test_smoothing_and_minimum_length_remove_flicker():
    spans = np.stack([np.arange(10), np.arange(10) + 2], axis=1).astype(float)
    labels = [0, 0, 0, 0, 1, 0, 0, 2, 2, 2]  # one flickering window
    assert len(segments_from_windows(spans, one_hot(labels), 11.0)) == 4
    merged = segments_from_windows(spans, one_hot(labels), 11.0, min_segment_s=1.5)
    assert [s.label for s in merged] == [0, 2]
    smoothed = segments_from_windows(spans, one_hot(labels), 11.0, smooth=3)
    assert [s.label for s in smoothed] == [0, 2]


def test_smooth_scores_keeps_shape_and_mass():
    scores = one_hot([0, 1, 2, 0, 1])
    smoothed = smooth_scores(scores, 3)
    assert smoothed.shape == scores.shape and np.allclose(smoothed.sum(axis=1), 1)
    assert smooth_scores(scores, 1) is scores


def test_a_single_window_is_one_segment():
    assert segments_from_windows(np.array([[0.0, 1.5]]), one_hot([2]), 1.5) == [Segment(0.0, 1.5, 2, 0.8)]
    assert segments_from_windows(np.zeros((0, 2)), np.zeros((0, 3)), 0.0) == []


def test_rejected_windows_become_none_segments_merged_like_the_others():
    spans = np.stack([np.arange(10), np.arange(10) + 2], axis=1).astype(float)  # 2 s windows, 1 s apart
    scores = one_hot([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    known = np.array([0.9, 0.9, 0.2, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9])  # window 2 flickers, 4-6 are nothing
    segments = segments_from_windows(spans, scores, 11.0, known=known, threshold=0.5)
    assert [s.label for s in segments] == [0, NO_CLASS, 0, NO_CLASS, 1]
    assert segments[1].score == 1.0 and segments[1].known_score == pytest.approx(
        0.2
    )  # all its windows rejected
    merged = segments_from_windows(spans, scores, 11.0, min_segment_s=1.5, known=known, threshold=0.5)
    assert [(s.start_s, s.end_s, s.label) for s in merged] == [
        (0.0, 4.5, 0),
        (4.5, 7.5, NO_CLASS),
        (7.5, 11.0, 1),
    ]
    # smoothing runs over the rejection scores too: the lone low window is outvoted by its neighbours
    smoothed = segments_from_windows(spans, scores, 11.0, smooth=3, known=known, threshold=0.5)
    assert [s.label for s in smoothed] == [0, NO_CLASS, 1]
    assert segments_from_windows(spans, scores, 11.0, known=known) == segments_from_windows(
        spans, scores, 11.0
    )


def test_a_short_known_segment_beside_none_goes_where_its_windows_point():
    spans = np.stack([np.arange(8), np.arange(8) + 2], axis=1).astype(float)
    scores = one_hot([0, 0, 0, 1, 2, 2, 2, 2], confidence=0.6)
    known = np.array([0.2, 0.2, 0.2, 0.45, 0.9, 0.9, 0.9, 0.9])  # window 3 passes alone, most of it unsure
    segments = segments_from_windows(spans, scores, 9.0, min_segment_s=1.5, known=known, threshold=0.4)
    assert [s.label for s in segments] == [NO_CLASS, 2]  # the class-1 window: 0.2 for class 2, 0 rejected
