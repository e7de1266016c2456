"""Temporal heads: per-frame features float (B, T, D) -> logits float (B, K).

- `avg`, `max`: order-blind consensus over the T frames, as in TSN (Wang et al., ECCV 2016).
- `attention`: a learned score per frame, softmax over T, weighted sum (order-blind, but the weights (B, T)
  show which frames decided).
- `tconv`: order-aware: two temporal 1D convolutions (kernel 3, BN, ReLU) over the frame features, then the
  mean over T. A clip and its time reversal give different logits, which sit_down vs stand_up needs.

Every head has dropout right before its classifier and takes any T >= 1. `forward(x, return_weights=True)`
also returns the per-frame weights (B, T) of the attention head, None for the others.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from behavior.models.registry import HEADS


class PoolHead(nn.Module):
    """An order-blind pooling over T (`pool`: "mean" or "max"), dropout, linear classifier."""

    def __init__(self, num_features: int, num_classes: int, dropout: float = 0.5, pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "max"):
            raise ValueError(f"pool={pool!r} is unknown; valid: mean, max")
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, None]:
        pooled = x.mean(dim=1) if self.pool == "mean" else x.amax(dim=1)  # (B, D)
        logits = self.fc(self.dropout(pooled))  # (B, K)
        return (logits, None) if return_weights else logits


def avg_head(num_features: int, num_classes: int, dropout: float = 0.5) -> PoolHead:
    """The "avg" head: mean over T, as TSN's consensus."""
    return PoolHead(num_features, num_classes, dropout, pool="mean")


def max_head(num_features: int, num_classes: int, dropout: float = 0.5) -> PoolHead:
    """The "max" head: max over T."""
    return PoolHead(num_features, num_classes, dropout, pool="max")


class AttentionHead(nn.Module):
    """A linear score per frame, softmax over T, the weighted sum of frame features, dropout, classifier."""

    def __init__(self, num_features: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.score = nn.Linear(num_features, 1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B, K); with `return_weights` also the frame weights float (B, T) in [0, 1], summing to 1."""
        weights = self.score(x).squeeze(-1).softmax(dim=1)  # (B, T)
        pooled = (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, D)
        logits = self.fc(self.dropout(pooled))  # (B, K)
        return (logits, weights) if return_weights else logits


class TConvHead(nn.Module):
    """Two Conv1d(kernel 3, padding 1) + BN + ReLU layers over time, mean over T, dropout, classifier.

    Two layers see 5 neighbouring frames; `hidden` channels keep the head small next to the backbone."""

    def __init__(self, num_features: int, num_classes: int, dropout: float = 0.5, hidden: int = 256):
        super().__init__()
        self.temporal = nn.Sequential(
            nn.Conv1d(num_features, hidden, 3, padding=1, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, None]:
        y = self.temporal(rearrange(x, "b t d -> b d t"))  # (B, hidden, T)
        logits = self.fc(self.dropout(y.mean(dim=2)))  # (B, K)
        return (logits, None) if return_weights else logits


def build_head(name: str, num_features: int, num_classes: int, dropout: float = 0.5) -> nn.Module:
    """Head `name` (a key of HEADS) mapping (B, T, num_features) to logits (B, num_classes)."""
    if name not in HEADS:
        raise ValueError(f"head={name!r} is unknown; valid: {', '.join(HEADS)}")
    return HEADS[name].builder()(num_features, num_classes, dropout)
