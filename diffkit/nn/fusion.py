"""Folding batch normalization into the preceding convolution or linear layer.

In evaluation mode y = γ (z - μ) / sqrt(σ² + ε) + β is affine in the layer's output
z = W x + b, so it folds into it: W' = W·s, b' = (b - μ)·s + β with
s = γ / sqrt(σ² + ε) per output channel. The fused model computes the same
function with one layer fewer.
"""

from __future__ import annotations

import numpy as np

from .layers import Conv2d, Identity, Linear, Sequential
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d

__all__ = ["fuse_conv_bn", "fuse", "fusion_pairs"]


def _fold(layer: Module, bn: Module) -> None:
    p, b = layer._parameters, bn._buffers
    var = b["running_var"].astype(np.float64)
    mean = b["running_mean"].astype(np.float64)
    gamma = bn._parameters["weight"].astype(np.float64) if bn.affine else np.ones_like(var)
    beta = bn._parameters["bias"].astype(np.float64) if bn.affine else np.zeros_like(var)
    scale = gamma / np.sqrt(var + bn.eps)
    w = p["weight"].astype(np.float64)
    bias = p["bias"].astype(np.float64) if "bias" in p else np.zeros(w.shape[0])
    p["weight"] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(layer.dtype)
    p["bias"] = ((bias - mean) * scale + beta).astype(layer.dtype)


def _pairs(model: Module):
    if isinstance(model, Sequential):
        mods = list(model._modules.items())
        return [(a, b) for (a, _), (b, _) in zip(mods, mods[1:])]
    return list(getattr(model, "fusable", ()))


def fusion_pairs(model: Module) -> list[tuple[str, str]]:
    """``(layer path, normalization path)`` of every conv or linear layer of ``model``
    followed by a batch normalization that :func:`fuse_conv_bn` folds: adjacent children
    of a ``Sequential`` (VGG's features, ResNet's projection shortcuts) and the pairs a
    module declares in ``fusable`` (LeNet-5, ResNet's stem and basic blocks)."""
    out = []
    for _, mod in model.named_modules():
        for a, b in _pairs(mod):
            layer, bn = mod._modules.get(a), mod._modules.get(b)
            if isinstance(layer, (Conv2d, Linear)) and isinstance(bn, (BatchNorm1d, BatchNorm2d)):
                out.append((layer._path, bn._path))
    return out


def fuse_conv_bn(model: Module) -> Module:
    """A copy of ``model`` in eval mode with each BatchNorm folded into the conv or
    linear layer before it (the BatchNorm becomes an Identity; a layer without a bias
    gains one). The pairs are those of ``fusion_pairs``.

    Args:
        model: the module to fuse (left unchanged).

    Returns:
        Module: the fused copy, in eval mode.

    >>> import numpy as np
    >>> import diffkit as dk
    >>> fused = dk.nn.fuse_conv_bn(dk.nn.ResNet())
    >>> any(isinstance(m, dk.nn.BatchNorm2d) for _, m in fused.named_modules())
    False

    Raises:
        ValueError: if a BatchNorm to fold does not track running statistics.
    """
    fused = model.copy().eval()
    for _, mod in list(fused.named_modules()):
        for a, b in _pairs(mod):
            layer, bn = mod._modules.get(a), mod._modules.get(b)
            if isinstance(layer, (Conv2d, Linear)) and isinstance(bn, (BatchNorm1d, BatchNorm2d)):
                if not bn.track_running_stats:
                    raise ValueError(f"fuse_conv_bn: {bn._path} has no running statistics")
                _fold(layer, bn)
                setattr(mod, b, Identity())
    return fused


#: the model-level name: every conv (or linear) layer followed by batch normalization
fuse = fuse_conv_bn
