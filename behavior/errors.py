"""The errors a user can cause and fix. Every one names the file, line, key or value to fix.

`behavior` (the CLI) prints a `BehaviorError` as one line and exits with status 2 (a few have their own
status: `EvaluationRefused` 3, `TrainingDiverged` and `ExportVerificationError` 1). Any other exception is a
bug and keeps its traceback. The classes also derive from the built-in error a caller would expect
(`ValueError`, `FileNotFoundError`, `FileExistsError`), so `except ValueError` keeps working.

No imports beyond the standard library: every module, the torch-free ones included, can raise these.
"""

from __future__ import annotations

import os


class BehaviorError(Exception):
    """Base of every error a user can fix; the message says what to fix."""


class ConfigError(BehaviorError, ValueError):
    """A config key or value that cannot be used; the message names the key."""


class UsageError(BehaviorError, ValueError):
    """A command-line argument or call argument that cannot be used; the message names it."""


class InputNotFound(BehaviorError, FileNotFoundError):
    """A file or folder the user named is not there."""


class OutputExists(BehaviorError, FileExistsError):
    """Writing would overwrite something that must be kept."""


class VideoError(BehaviorError, ValueError):
    """A video that cannot be opened or decoded. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SplitFileError(BehaviorError, ValueError):
    """A split file, class index or annotation list that cannot be used; names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, reason: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


class CheckpointError(BehaviorError, ValueError):
    """A checkpoint (or weights file) that cannot be used; the message names the file."""


class SourceError(BehaviorError, ValueError):
    """A camera, stream or file for live mode that cannot be opened."""


class ExportVerificationError(BehaviorError):
    """onnxruntime and PyTorch disagree on real clips by more than the export tolerance."""


class EvaluationRefused(BehaviorError):
    """Some videos of the split could not be decoded, and failures were not allowed."""


class TrainingDiverged(BehaviorError):
    """The loss became NaN or infinite; the message names the epoch and step."""
