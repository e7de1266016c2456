"""behavior: video action recognition with a 2D CNN, spatial attention and a temporal pooling head."""

__version__ = "0.1.0"
