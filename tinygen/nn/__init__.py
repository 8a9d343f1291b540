"""tinygen.nn: layers with parameters, built on the ops in ``tinygen.functional``.

    import tinygen.nn as nn

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
    model.named_parameters()   # '0.weight', '0.bias', '2.weight', '2.bias'
    model.eval()               # BatchNorm / Dropout switch to their evaluation behaviour

``tinygen.nn.functional`` is ``tinygen.functional`` (the ops), and
``tinygen.nn.init`` fills weights with the usual initialisations.
"""
import sys as _sys

from .. import functional
from . import init
from .module import Module, Parameter, LoadStateDictError, IncompatibleKeys
from .container import Sequential, ModuleList
from .linear import Linear, Identity
from .embedding import Embedding
from .normalization import BatchNorm1d, BatchNorm2d, InstanceNorm2d, LayerNorm, batch_norm
from .pooling import AvgPool2d, MaxPool2d, Upsample
from .padding import ReflectionPad2d, ReplicationPad2d
from .activation import ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus
from .reshape import Flatten, Unflatten, Reshape, Dropout
from .recurrent import LSTM
from .conv import Conv2d, ConvTranspose2d
from .masked import MaskedConv2d, RowLSTM, DiagonalBiLSTM
from .progressive import PixelNorm, MinibatchStd, EqualizedLinear, EqualizedConv2d

__all__ = ["functional", "init", "Module", "Parameter", "LoadStateDictError", "IncompatibleKeys",
           "Sequential", "ModuleList", "Linear", "Identity", "Embedding", "BatchNorm1d", "BatchNorm2d",
           "InstanceNorm2d", "LayerNorm", "batch_norm", "AvgPool2d", "MaxPool2d", "Upsample",
           "ReflectionPad2d", "ReplicationPad2d", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh",
           "Softplus", "Flatten", "Unflatten", "Reshape", "Dropout", "LSTM", "Conv2d", "ConvTranspose2d",
           "MaskedConv2d", "RowLSTM", "DiagonalBiLSTM", "PixelNorm", "MinibatchStd", "EqualizedLinear",
           "EqualizedConv2d"]

# ``import tinygen.nn.functional as F`` (PyTorch's spelling) finds the same module as
# ``import tinygen.functional as F``: register it under the nn name too.
_sys.modules.setdefault(__name__ + ".functional", functional)
