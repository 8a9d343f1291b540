"""Optimizers: update parameters theta from their gradients g = dL/dtheta.

Each ``step()`` reads ``p.grad`` of every parameter and changes ``p.data`` in
place (the same array, so the Parameter objects that modules and optimizer
share stay one object). Updates are whole-array NumPy/CuPy expressions, outside
the graph; a parameter whose ``grad`` is None (unused in this loss) is skipped,
and its state is left as it was.

SGD with momentum mu, weight decay lambda, learning rate eta (PyTorch's form):

    g  <- g + lambda theta
    b  <- g                       on the first step
    b  <- mu b + g                afterwards
    d  <- g + mu b  (Nesterov)    or  d <- b
    theta <- theta - eta d

Adam (Kingma & Ba, 2015), step t = 1, 2, ...:

    g  <- g + lambda theta                    (L2 decay added to the gradient, as PyTorch's Adam)
    m  <- beta1 m + (1 - beta1) g             first-moment estimate
    v  <- beta2 v + (1 - beta2) g^2           second-moment estimate
    m_hat = m / (1 - beta1^t)                 bias corrections: m and v start at 0
    v_hat = v / (1 - beta2^t)
    theta <- theta - eta m_hat / (sqrt(v_hat) + eps)

AdamW (Loshchilov & Hutter, 2019) decouples the decay from the moments:
theta <- theta (1 - eta lambda), then the Adam step with lambda = 0.

Checkpoints: ``state_dict()`` is a plain nested dict (hyperparameters, and a list
with one dict of arrays and numbers per parameter, in the order the parameters
were given), which ``tinygen.save`` writes; ``load_state_dict`` checks that it
fits the parameters before changing anything, so a run resumed from it
continues exactly as the uninterrupted run would.
"""
import math

import numpy as np

from . import backend
from .autograd.tensor import Tensor


class Optimizer:
    """Base class: holds the parameter list, per-parameter state and hyperparameters.

    Subclasses list their hyperparameter names in ``hyperparameters`` (each is a
    plain attribute, e.g. ``opt.lr = 1e-4`` for a schedule) and define
    ``_update(p, grad, state)``.
    """
    hyperparameters = ("lr",)

    def __init__(self, params, **hyper):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            f"(e.g. model.parameters()), got a single Tensor; wrap it in a list")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (did the model "
                             f"register its layers, and was model.parameters() already used up?)")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, "
                                f"not a Tensor/Parameter")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {tuple(p.shape)}) "
                                 f"{'does not require a gradient' if not p.requires_grad else 'is not a leaf'}; "
                                 f"optimizers update leaf tensors with requires_grad=True")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {tuple(p.shape)}) "
                                 f"appears twice in the list")
            seen.add(id(p))
        self.params = params
        self.state = [{} for _ in params]  # one dict per parameter, filled on its first step
        for name in self.hyperparameters:
            setattr(self, name, hyper[name])
        self._check_hyperparameters()

    def _check_hyperparameters(self):
        if not self.lr >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be non-negative, got {self.lr}")

    def zero_grad(self):
        """Forget every parameter's gradient (``.grad = None``), before the next backward."""
        for p in self.params:
            p.grad = None

    def step(self):
        """One update of every parameter that has a gradient."""
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            g = p.grad.data
            if g.shape != p.shape:
                raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape {tuple(p.shape)} "
                                   f"has a gradient of shape {tuple(g.shape)}")
            self._update(p.data, g, state)

    def _update(self, theta, grad, state):
        raise NotImplementedError

    # --- checkpoints --------------------------------------------------------------
    def state_dict(self):
        """{'type', 'hyperparameters', 'state': [per-parameter dict of arrays and numbers]}; copies."""
        def copy(v):
            return np.array(backend.to_device(v, "cpu"), copy=True) if hasattr(v, "shape") else v
        return {
            "type": type(self).__name__,
            "hyperparameters": {k: getattr(self, k) for k in self.hyperparameters},
            "state": [{k: copy(v) for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state):
        """Restore hyperparameters and per-parameter state saved by ``state_dict``."""
        name = type(self).__name__
        if not isinstance(state, dict) or not {"hyperparameters", "state"} <= set(state):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'hyperparameters' and "
                             f"'state' (from state_dict()), got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        saved_type = state.get("type", name)
        if saved_type != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_type}, not {name}")
        per_param = list(state["state"])
        if len(per_param) != len(self.params):
            raise ValueError(f"{name}.load_state_dict: the state has {len(per_param)} parameters, "
                             f"this optimizer has {len(self.params)}")
        hyper = state["hyperparameters"]
        problems = [f"hyperparameter '{k}' is missing" for k in self.hyperparameters if k not in hyper]
        for i, (p, s) in enumerate(zip(self.params, per_param)):
            for k, v in s.items():
                if hasattr(v, "shape") and np.ndim(v) > 0 and tuple(v.shape) != tuple(p.shape):
                    problems.append(f"parameter {i}: state '{k}' has shape {tuple(v.shape)}, "
                                    f"the parameter has shape {tuple(p.shape)}")
        if problems:
            raise ValueError(f"{name}.load_state_dict: the state does not fit:\n  " + "\n  ".join(problems))
        for k in self.hyperparameters:
            v = hyper[k]
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self._check_hyperparameters()
        # copies on each parameter's device, in its dtype; numbers (step counts) as they are
        self.state = [{k: (backend.to_device(v, p.device).astype(p.dtype, copy=True)
                           if np.ndim(v) > 0 else v)
                       for k, v in s.items()} for p, s in zip(self.params, per_param)]

    def __repr__(self):
        hyper = ", ".join(f"{k}={getattr(self, k)}" for k in self.hyperparameters)
        n = len(self.params)
        return f"{type(self).__name__}({hyper}; {n} parameter{'s' if n != 1 else ''})"


class SGD(Optimizer):
    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        if not self.momentum >= 0:
            raise ValueError(f"SGD: momentum must be non-negative, got {self.momentum}")
        if not self.weight_decay >= 0:
            raise ValueError(f"SGD: weight_decay must be non-negative, got {self.weight_decay}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def _update(self, theta, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * theta  # a new array: p.grad itself is not changed
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        theta -= self.lr * g


class Adam(Optimizer):
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    decoupled = False  # AdamW: decay theta directly instead of adding lambda theta to g

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        name = type(self).__name__
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {self.betas}")
        if not self.eps >= 0:
            raise ValueError(f"{name}: eps must be non-negative, got {self.eps}")
        if not self.weight_decay >= 0:
            raise ValueError(f"{name}: weight_decay must be non-negative, got {self.weight_decay}")

    def _update(self, theta, g, state):
        xp = backend.get_array_module(theta)
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                theta *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * theta
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(theta)     # m
            state["exp_avg_sq"] = xp.zeros_like(theta)  # v
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        # eta m_hat / (sqrt(v_hat) + eps) written as (eta / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        denom = xp.sqrt(v) / math.sqrt(bias2)
        denom += self.eps
        theta -= (self.lr / bias1) * m / denom


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
