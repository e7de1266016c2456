"""Outlier exposure from the training clips themselves: clips that are none of the behaviours, made in each step
from the batch, and a loss that pushes their scores towards equal (Hendrycks et al., "Deep Anomaly Detection
with Outlier Exposure", ICLR 2019, with made-up outliers in place of an auxiliary data set).

Two kinds, each a fact about every behaviour a clip model learns, true of any label set:
- `still`: one frame of a clip held for all T frames. No behaviour happens without motion, so a frozen person
  (or an empty, still scene) must not score as one: this is what an idle stretch looks like.
- `shuffled`: the T frames of a clip in a random order (never the order itself or its reverse, which for
  sit_down is stand_up). The look of the behaviour without its motion: what a model that has only learnt
  "arm up means wave" scores as highly as the real thing.

The loss is the cross-entropy of the outliers' logits to the uniform distribution, -mean_k log p_k, whose least
value log K is reached when every class gets 1/K. Training adds it to the classification loss with the weight
`confidence.outlier_exposure`.
"""

from __future__ import annotations

import torch


def _shuffled_order(num_frames: int, generator: torch.Generator) -> torch.Tensor:
    """A permutation of range(num_frames) that is neither the identity nor its reverse (num_frames >= 3)."""
    forward = torch.arange(num_frames)
    while True:
        order = torch.randperm(num_frames, generator=generator)
        if not (torch.equal(order, forward) or torch.equal(order, forward.flip(0))):
            return order


def made_up_outliers(clip: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` outlier clips (B_out, T, ...) from clip (B, T, ...) (frames, or per-frame cached features: any
    tensor whose second axis is time), the first half still and the rest shuffled, each from a random clip of the
    batch. With T < 3 no order differs from both the clip and its reverse: every outlier is still."""
    batch, num_frames = clip.shape[:2]
    sources = torch.randint(batch, (count,), generator=generator)
    outliers = []
    for i, source in enumerate(sources.tolist()):
        if i < (count + 1) // 2 or num_frames < 3:
            held = int(torch.randint(num_frames, (1,), generator=generator))
            order = torch.full((num_frames,), held, dtype=torch.long)
        else:
            order = _shuffled_order(num_frames, generator)
        outliers.append(clip[source, order.to(clip.device)])
    return torch.stack(outliers)  # (count, T, ...)


def uniform_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (N, K) to the uniform distribution over K classes, averaged over N."""
    return -torch.log_softmax(logits.float(), dim=1).mean(dim=1).mean()
