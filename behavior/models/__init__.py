"""The model: `registry` (the named parts, without torch), `attention` (CBAM), `temporal_shift` (TSM),
`backbones` (per-frame 2D CNNs) with their `pretrained` weights, `heads` (pooling over time) and `classifier`
(the clip classifier that joins them)."""
