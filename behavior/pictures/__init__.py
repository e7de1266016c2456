"""Pictures: `plots` (confusion matrix, training curves), `overlay` (heatmaps and labels on frames), `frames`
(clips as the data path makes them), `attention` (where the model looks) and `gallery` (misclassified videos)."""
