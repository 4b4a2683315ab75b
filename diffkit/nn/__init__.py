"""Neural-network layers that build IR, with PyTorch's conventions (NCHW, names, modes)."""

from . import kernels
from .fusion import fuse, fuse_conv_bn
from .layers import (
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .activation import (
    ELU,
    GELU,
    GLU,
    SELU,
    Dropout2d,
    Hardtanh,
    LeakyReLU,
    Mish,
    ReLU6,
    Residual,
    SiLU,
    Softplus,
)
from .padding import (
    CircularPad2d,
    ConstantPad2d,
    ReflectionPad2d,
    ReplicationPad2d,
    ZeroPad2d,
)
from .models import MLP, VGG, BasicBlock, LeNet5, LogisticRegression, ResNet
from .module import Module, manual_seed
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from . import functional  # noqa: E402
from .checkpoint import checkpoint_sequential, with_checkpoints  # noqa: E402

__all__ = [
    "checkpoint_sequential",
    "with_checkpoints",
    "Module",
    "manual_seed",
    "Linear",
    "Conv2d",
    "ConvTranspose2d",
    "ZeroPad2d",
    "ConstantPad2d",
    "ReflectionPad2d",
    "ReplicationPad2d",
    "CircularPad2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "GELU",
    "ELU",
    "SELU",
    "SiLU",
    "Mish",
    "LeakyReLU",
    "Hardtanh",
    "ReLU6",
    "Softplus",
    "GLU",
    "Dropout2d",
    "Residual",
    "GroupNorm",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Sequential",
    "Identity",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "InstanceNorm2d",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "MSELoss",
    "LeNet5",
    "MLP",
    "LogisticRegression",
    "VGG",
    "ResNet",
    "BasicBlock",
    "fuse_conv_bn",
    "fuse",
    "kernels",
    "functional",
]
