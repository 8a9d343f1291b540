"""tinygen.optim: what moves the parameters once the gradients are known.

    optimizer.py     Optimizer: param groups, per-parameter state, state_dict
    sgd.py           SGD (momentum, Nesterov, weight decay)
    adam.py          Adam, AdamW
    lr_scheduler.py  LambdaLR, StepLR, LinearDecayLR: group["lr"] = base_lr * f(epoch)
    ema.py           EMA: an exponential moving average of a module's parameters
    clip.py          clip_grad_norm_: scale all gradients to a total norm
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .lr_scheduler import LRScheduler, LambdaLR, StepLR, LinearDecayLR
from .ema import EMA
from .clip import clip_grad_norm_

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "LambdaLR", "StepLR",
           "LinearDecayLR", "EMA", "clip_grad_norm_"]
