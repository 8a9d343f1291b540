"""An exponential moving average of a module's parameters (Progressive GAN samples from it).

For every parameter theta of the module, the average theta_bar (the "shadow")
starts as a copy of theta and, at each ``update()`` after an optimizer step,

    theta_bar <- decay * theta_bar + (1 - decay) * theta,        0 <= decay < 1

so after n updates theta_bar = decay^n theta_0 + (1 - decay) sum_k decay^(n-k) theta_k:
the recent weights count most, and noise in the last steps averages out.
decay = 0 copies theta; decay near 1 (0.999) averages over about
1 / (1 - decay) steps.

Buffers (BatchNorm's running mean and variance, ...) are copied, not averaged:
``update()`` sets each shadow buffer to the module's current buffer. This is
Progressive GAN's choice (trainable variables averaged, the rest copied with
beta = 0): a buffer is already a statistic of the network that computed it.

``copy_to(module)`` writes the averages into a module with the same names and
shapes (usually a second copy of the network, used for sampling), through
``Tensor.copy_``, which bumps each tensor's version. Every name and shape is
checked before anything is written.

A parameter or buffer that the tracked module gains after the EMA was built (a
growing network) joins the average at its current value on the next update.

``state_dict()`` is {"type": "EMA", "decay", "num_updates", "params": {name:
array}, "buffers": {name: array}}, with CPU copies, for ``tinygen.save``.
"""
import math
import numbers

from .. import backend
from ..nn.module import Module


def _check_decay(decay):
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise TypeError(f"EMA: decay must be a number in [0, 1), got {type(decay).__name__}")
    decay = float(decay)
    if not (math.isfinite(decay) and 0 <= decay < 1):
        raise ValueError(f"EMA: decay must be in [0, 1), got {decay}")
    return decay


def _cpu_copies(arrays):
    return {name: backend.to_device(a, "cpu").copy() for name, a in arrays.items()}


def _shape_problems(have, want, what, new_allowed=False):
    """Lines naming every name missing from, extra in, or mis-shaped between two name -> shape maps."""
    lines = [f"{name}: in the EMA, not in {what}" for name in have if name not in want]
    if not new_allowed:
        lines += [f"{name}: in {what}, not in the EMA" for name in want if name not in have]
    lines += [f"{name}: the EMA has shape {have[name]}, {what} has {want[name]}"
              for name in have if name in want and have[name] != want[name]]
    return lines


class EMA:
    """``EMA(module, decay)``: ``update()`` after each optimizer step, ``copy_to(other)`` to use it."""

    def __init__(self, module, decay):
        if not isinstance(module, Module):
            raise TypeError(f"EMA: expected a Module, got {type(module).__name__}")
        self.decay = _check_decay(decay)
        self.module = module
        self.num_updates = 0
        self.params = {name: p.data.copy() for name, p in module.named_parameters()}
        self.buffers = {name: b.data.copy() for name, b in module.named_buffers()}

    def update(self):
        """theta_bar <- decay theta_bar + (1 - decay) theta for every parameter; buffers copied."""
        params, buffers = dict(self.module.named_parameters()), dict(self.module.named_buffers())
        self._check_fits(params, buffers, "update", new_allowed=True)
        d = self.decay
        for name, p in params.items():
            if name not in self.params:  # a layer the network gained: its average starts here
                self.params[name] = p.data.copy()
                continue
            shadow = self.params[name]
            if backend.device_of(shadow) != p.device:  # the module was moved (Module.to)
                shadow = self.params[name] = backend.to_device(shadow, p.device)
            shadow *= d
            shadow += (1 - d) * p.data
        for name, b in buffers.items():
            self.buffers[name] = b.data.copy()
        self.num_updates += 1

    def copy_to(self, module):
        """Write the averaged parameters and the buffers into ``module`` (same names and shapes)."""
        if not isinstance(module, Module):
            raise TypeError(f"EMA.copy_to: expected a Module, got {type(module).__name__}")
        params, buffers = dict(module.named_parameters()), dict(module.named_buffers())
        self._check_fits(params, buffers, "copy_to", new_allowed=False)
        for targets, shadows in ((params, self.params), (buffers, self.buffers)):
            for name, t in targets.items():
                t.copy_(backend.to_device(shadows[name], t.device))

    def _check_fits(self, params, buffers, where, new_allowed):
        mine = {name: tuple(a.shape) for name, a in {**self.params, **self.buffers}.items()}
        theirs = {name: tuple(t.shape) for name, t in {**params, **buffers}.items()}
        lines = _shape_problems(mine, theirs, "the module", new_allowed)
        if lines:
            raise ValueError(f"EMA.{where}: the module does not fit the average:\n  " + "\n  ".join(lines))

    # --- checkpoints ----------------------------------------------------------------
    def state_dict(self):
        return {"type": "EMA", "decay": self.decay, "num_updates": self.num_updates,
                "params": _cpu_copies(self.params), "buffers": _cpu_copies(self.buffers)}

    def load_state_dict(self, state):
        """Restore decay, count and averages; names and shapes must match the current ones."""
        keys = ("type", "decay", "num_updates", "params", "buffers")
        if not isinstance(state, dict) or not set(keys) <= set(state) or state["type"] != "EMA":
            raise ValueError(f"EMA.load_state_dict: expected a dict with {', '.join(keys)} and type 'EMA' "
                             f"(from EMA.state_dict()), got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        decay = _check_decay(state["decay"])
        lines = []
        for part in ("params", "buffers"):
            have = {name: tuple(a.shape) for name, a in getattr(self, part).items()}
            want = {name: tuple(a.shape) for name, a in state[part].items()}
            lines += _shape_problems(have, want, f"the state's {part}")
        if lines:
            raise ValueError("EMA.load_state_dict: the state does not fit this average:\n  " + "\n  ".join(lines))
        for part in ("params", "buffers"):
            mine = getattr(self, part)
            for name, a in state[part].items():
                old = mine[name]
                mine[name] = backend.to_device(a, backend.device_of(old)).astype(old.dtype, copy=True)
        self.decay, self.num_updates = decay, int(state["num_updates"])

    def __repr__(self):
        return (f"EMA(decay={self.decay}; {len(self.params)} parameters, {len(self.buffers)} buffers, "
                f"{self.num_updates} updates)")
