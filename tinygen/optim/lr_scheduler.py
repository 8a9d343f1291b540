"""Learning-rate schedules: each group's lr as its base lr times a factor of the epoch.

A scheduler holds the lr each param group had when the scheduler was built
(``base_lrs``, eta_0 per group) and a counter e (``last_epoch``, 0 when built,
+1 per ``step()``). At every change of e it writes

    group["lr"] = eta_0 * f(e)

into the optimizer's groups, which the optimizer reads at its next step. The
lr is computed from e in closed form, never by multiplying the previous lr, so
it is exactly the same number however the run got to epoch e (a resumed run
included). The three factors:

    LambdaLR(opt, lr_lambda)             f(e) = lr_lambda(e)      (one function, or one per group)
    StepLR(opt, step_size, gamma=0.1)    f(e) = gamma ^ floor(e / step_size)
    LinearDecayLR(opt, total_steps, decay_start)          CycleGAN's schedule, with
                                         T = total_steps, D = decay_start:
                                         f(e) = 1                   for e <= D
                                         f(e) = (T - e) / (T - D)   for D <= e <= T
                                         f(e) = 0                   for e >= T
                                         constant, then a straight line to zero at T

Use, once per epoch (or per step, whichever e counts): ``opt.step()`` for every
batch, then ``scheduler.step()``. ``get_last_lr()`` gives the lrs last written.

Checkpoints: ``state_dict()`` holds the kind, ``last_epoch``, ``base_lrs`` and
the schedule's own numbers (a plain dict for ``tinygen.save``); LambdaLR cannot
store its function, so it stores only e and the base lrs, and the function comes
from the constructor. ``load_state_dict`` checks the kind and the group count,
then writes the lrs for the restored e into the optimizer at once, so it does
not matter whether the optimizer's state is loaded before or after.
"""
import math

import numpy as np

from .optimizer import Optimizer


def _require_optimizer(name, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: expected an Optimizer (e.g. tinygen.optim.Adam(model.parameters())), "
                        f"got {type(optimizer).__name__}")


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


class LRScheduler:
    """Base class: subclasses define ``lr_factor(epoch, group_index)`` and name their own
    saved numbers in ``settings`` (checked by ``_check_settings``)."""
    settings = ()

    def __init__(self, optimizer, **settings):
        name = type(self).__name__
        _require_optimizer(name, optimizer)
        self._check_settings(settings)
        for k, v in settings.items():
            setattr(self, k, v)
        self.optimizer = optimizer
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self._apply(0)

    def _check_settings(self, settings):
        pass

    def lr_factor(self, epoch, group_index):
        raise NotImplementedError

    def get_lr(self):
        """The lr of every group at ``last_epoch``: eta_0 * f(e)."""
        return self._lrs_at(self.last_epoch)

    def _lrs_at(self, epoch):
        lrs = []
        for i, base in enumerate(self.base_lrs):
            f = self.lr_factor(epoch, i)
            if not (math.isfinite(f) and f >= 0):
                raise ValueError(f"{type(self).__name__}: the lr factor at epoch {epoch} "
                                 f"(param group {i}) is {f}; it must be a finite non-negative number")
            lrs.append(base * f)
        return lrs

    def get_last_lr(self):
        """The lrs last written into the optimizer's groups."""
        return list(self._last_lr)

    def step(self):
        """Advance e by one and write the new lrs."""
        self._apply(self.last_epoch + 1)

    def _apply(self, epoch):
        """Write the lrs of epoch e into the optimizer's groups; e becomes ``last_epoch``."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise RuntimeError(f"{type(self).__name__}: the optimizer has {len(groups)} param groups, "
                               f"this scheduler was built for {len(self.base_lrs)}; build the "
                               f"scheduler after add_param_group")
        lrs = self._lrs_at(epoch)
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self.last_epoch, self._last_lr = epoch, lrs

    # --- checkpoints ----------------------------------------------------------------
    def state_dict(self):
        return {"type": type(self).__name__, "last_epoch": self.last_epoch,
                "base_lrs": list(self.base_lrs), **{k: getattr(self, k) for k in self.settings}}

    def load_state_dict(self, state):
        """Restore e, the base lrs and the settings, and write the lrs for e at once."""
        name = type(self).__name__
        keys = ("type", "last_epoch", "base_lrs") + self.settings
        if not isinstance(state, dict) or not set(keys) <= set(state):
            raise ValueError(f"{name}.load_state_dict: expected a dict with {', '.join(keys)} "
                             f"(from state_dict()), got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        if state["type"] != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {state['type']}, not {name}")
        base_lrs = [float(lr) for lr in state["base_lrs"]]
        n = len(self.optimizer.param_groups)
        if len(base_lrs) != n:
            raise ValueError(f"{name}.load_state_dict: the state is for {len(base_lrs)} param groups, "
                             f"the optimizer has {n}")
        if not all(math.isfinite(lr) and lr >= 0 for lr in base_lrs):
            raise ValueError(f"{name}.load_state_dict: base_lrs must be finite and non-negative, got {base_lrs}")
        epoch = state["last_epoch"]
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"{name}.load_state_dict: last_epoch must be a non-negative integer, got {epoch!r}")
        settings = {k: state[k] for k in self.settings}
        self._check_settings(settings)
        for k, v in settings.items():
            setattr(self, k, v)
        self.base_lrs = base_lrs
        self._apply(int(epoch))

    def __repr__(self):
        settings = "".join(f"{k}={getattr(self, k)}, " for k in self.settings)
        return f"{type(self).__name__}({settings}last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class LambdaLR(LRScheduler):
    """f(e) = lr_lambda(e); ``lr_lambda`` is one function for every group or a list, one per group."""

    def __init__(self, optimizer, lr_lambda):
        _require_optimizer("LambdaLR", optimizer)
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(f"LambdaLR: got {len(lambdas)} lr_lambdas for an optimizer with {n} param groups")
        for i, f in enumerate(lambdas):
            if not callable(f):
                raise TypeError(f"LambdaLR: lr_lambda{f' {i}' if n > 1 else ''} must be a function "
                                f"of the epoch, got {type(f).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)

    def lr_factor(self, epoch, group_index):
        f = self.lr_lambdas[group_index](epoch)
        if not isinstance(f, (int, float, np.integer, np.floating)) or isinstance(f, bool):
            raise TypeError(f"LambdaLR: lr_lambda({epoch}) returned {f!r}, not a number")
        return float(f)


class StepLR(LRScheduler):
    """f(e) = gamma ^ floor(e / step_size): the lr is multiplied by gamma every step_size epochs."""
    settings = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def _check_settings(self, s):
        if not _is_int(s["step_size"]) or s["step_size"] < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {s['step_size']!r}")
        if not (isinstance(s["gamma"], (int, float, np.number)) and math.isfinite(s["gamma"])
                and s["gamma"] > 0):
            raise ValueError(f"StepLR: gamma must be a finite positive number, got {s['gamma']!r}")

    def lr_factor(self, epoch, group_index):
        return float(self.gamma) ** (epoch // int(self.step_size))


class LinearDecayLR(LRScheduler):
    """f(e) = 1 up to decay_start D, then (T - e) / (T - D) down to 0 at total_steps T, then 0."""
    settings = ("total_steps", "decay_start")

    def __init__(self, optimizer, total_steps, decay_start):
        super().__init__(optimizer, total_steps=total_steps, decay_start=decay_start)

    def _check_settings(self, s):
        total, start = s["total_steps"], s["decay_start"]
        if not _is_int(total) or total < 1:
            raise ValueError(f"LinearDecayLR: total_steps must be a positive integer, got {total!r}")
        if not _is_int(start) or not 0 <= start < total:
            raise ValueError(f"LinearDecayLR: decay_start must be an integer in [0, total_steps), got "
                             f"decay_start={start!r} with total_steps={total}")

    def lr_factor(self, epoch, group_index):
        total, start = int(self.total_steps), int(self.decay_start)
        if epoch <= start:
            return 1.0
        return max(0.0, (total - epoch) / (total - start))
