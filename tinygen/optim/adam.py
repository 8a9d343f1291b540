"""Adam and AdamW: steps scaled by running estimates of the gradient's moments.

Adam (Kingma & Ba, 2015), for a parameter theta with gradient g at its step
t = 1, 2, ... (the options lr = eta, betas = (beta1, beta2), eps, weight_decay =
lambda are read from the parameter's group):

    g  <- g + lambda theta                    L2 decay added to the gradient (PyTorch's Adam)
    m  <- beta1 m + (1 - beta1) g             first-moment estimate
    v  <- beta2 v + (1 - beta2) g^2           second-moment estimate
    m_hat = m / (1 - beta1^t)                 bias corrections: m and v start at 0
    v_hat = v / (1 - beta2^t)
    theta <- theta - eta m_hat / (sqrt(v_hat) + eps)

On the first step m_hat = g and v_hat = g^2, so each value moves by eta sign(g)
(eps aside), whatever the gradient's scale.

AdamW (Loshchilov & Hutter, 2019) decouples the decay from the moments: first
theta <- theta (1 - eta lambda), then the Adam step with lambda = 0.

Per-parameter state: ``step`` (t), ``exp_avg`` (m), ``exp_avg_sq`` (v); t counts
the parameter's own updates, so a layer added later (``add_param_group``) starts
its own bias correction at t = 1 while the old layers continue theirs.
"""
from .. import backend, fast_paths
from ._in_place import adam_step_in_place
from .optimizer import Optimizer


class Adam(Optimizer):
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    decoupled = False  # AdamW: decay theta directly instead of adding lambda theta to g

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _check_group(self, group, label):
        super()._check_group(group, label)
        betas = group["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{label}: betas must be two numbers in [0, 1), got {betas}")
        if not group["eps"] >= 0:
            raise ValueError(f"{label}: eps must be non-negative, got {group['eps']}")
        if not group["weight_decay"] >= 0:
            raise ValueError(f"{label}: weight_decay must be non-negative, got {group['weight_decay']}")

    def _update(self, theta, g, state, group):
        xp = backend.get_array_module(theta)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if decay:
            if self.decoupled:
                theta *= 1 - lr * decay
            else:
                g = g + decay * theta
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(theta)     # m
            state["exp_avg_sq"] = xp.zeros_like(theta)  # v
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        if fast_paths.enabled():
            adam_step_in_place(xp, theta, g, m, v, lr, beta1, beta2, group["eps"], bias1, bias2)
            return
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / bias1, v / bias2
        theta -= lr * m_hat / (xp.sqrt(v_hat) + group["eps"])


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
