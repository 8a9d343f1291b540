"""Stochastic gradient descent with momentum, in PyTorch's form.

For a parameter theta with gradient g, learning rate eta, momentum mu and weight
decay lambda (all read from the parameter's group at each step):

    g  <- g + lambda theta          L2 decay, added to the gradient
    b  <- g                         on the parameter's first step
    b  <- mu b + g                  afterwards (b: the momentum buffer)
    d  <- g + mu b   (Nesterov)     or   d <- b
    theta <- theta - eta d

With mu = 0 there is no buffer and d = g. The buffer is the only per-parameter
state: ``state["momentum_buffer"]``.
"""
from .optimizer import Optimizer


class SGD(Optimizer):
    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def _check_group(self, group, label):
        super()._check_group(group, label)
        if not group["momentum"] >= 0:
            raise ValueError(f"{label}: momentum must be non-negative, got {group['momentum']}")
        if not group["weight_decay"] >= 0:
            raise ValueError(f"{label}: weight_decay must be non-negative, got {group['weight_decay']}")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError(f"{label}: nesterov=True needs momentum > 0")

    def _update(self, theta, g, state, group):
        mu, decay = group["momentum"], group["weight_decay"]
        if decay:
            g = g + decay * theta  # a new array: p.grad itself is not changed
        if mu:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mu
                buf += g
            g = g + mu * buf if group["nesterov"] else buf
        theta -= group["lr"] * g
