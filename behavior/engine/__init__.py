"""Running the model: `runtime` (device, process group, autocast, eval mode), `train` and its `runlog`,
`scoring` (the one forward of validation, evaluation and prediction), `evaluate`, `checkpoint` and `metrics`;
`calibration` (temperature, ECE), `rejection` (scores that say "none of these", thresholds) and `confidence`
(what a checkpoint keeps of both, and how it judges logits)."""
