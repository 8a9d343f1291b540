"""The optimizer's bookkeeping: parameter groups, per-parameter state, checkpoints.

An optimizer changes parameters theta in place from their gradients g = dL/dtheta.
What every optimizer shares lives here; the update rules (``sgd.py``, ``adam.py``)
only say how one parameter moves.

Parameter groups (PyTorch's form)
---------------------------------
``opt.param_groups`` is a list of dicts, one per group:

    {"params": [theta_1, theta_2, ...], "lr": eta, <the other options>: ...}

The constructor takes either an iterable of parameters (one group) or an iterable
of such dicts; an option a group leaves out falls back to the constructor's value,
kept in ``opt.defaults``. ``add_param_group(group)`` adds a group later (a growing
network adds its new layers while the old layers keep their state, e.g. Adam's
moments). The options are read from the group at every ``step()``, so a
learning-rate schedule is nothing but ``group["lr"] = ...`` (``lr_scheduler.py``).
``opt.lr = x`` sets the lr of every group; reading ``opt.lr`` gives the common
value (an error when the groups differ). The same holds for every option.

Which parameters move
---------------------
A parameter is updated when ``p.requires_grad`` and ``p.grad is not None``. A
frozen parameter (``requires_grad=False``, e.g. a discriminator held fixed)
may sit in a group; it is skipped, and so is one that this loss did not reach.
A skipped parameter keeps its values, its version and its state. Each update
changes ``p.data`` in place (the same array, so modules and optimizer share one
Parameter object) and then calls ``p._bump_version()``: a graph built before the
step and used after it fails loudly instead of differentiating through stale
values.

State and checkpoints
---------------------
``opt.state[i]`` is the dict of parameter i (counted over all groups in order;
empty until its first update). ``state_dict()`` is a plain nested dict that
``tinygen.save`` writes without pickle:

    {"type": "Adam",
     "hyperparameters": {constructor defaults},
     "param_groups": [{"params": [0, 1], "lr": ..., ...}, ...],   indices, not tensors
     "state": [{"step": 3, "exp_avg": array, ...}, ...]}           one dict per parameter

``load_state_dict`` checks that the whole state fits (kind, groups, the indices
each group holds, every option present and valid, every array's shape) before it
changes anything, so a resumed run continues exactly as the uninterrupted one.
A state without "param_groups" (written before groups existed) is read as one
group holding every parameter with the "hyperparameters".
"""
import numpy as np

from .. import backend
from ..autograd.tensor import Tensor


def _is_array(value):
    """A NumPy or CuPy array (not a Python number or NumPy scalar such as a step count)."""
    return isinstance(value, np.ndarray) or backend.get_array_module(value) is not np


def _option(value):
    """Options are stored as given, except lists, which become tuples (betas after a JSON round trip)."""
    return tuple(value) if isinstance(value, list) else value


class Optimizer:
    """Base class. Subclasses name their per-group options in ``hyperparameters``,
    pass their defaults to ``__init__``, and define ``_update(theta, grad, state, group)``
    and, for the checks of their own options, ``_check_group(group, label)``."""
    hyperparameters = ("lr",)

    def __init__(self, params, **defaults):
        name = type(self).__name__
        self.defaults = {k: _option(defaults[k]) for k in self.hyperparameters}
        self._check_group(self.defaults, name)
        self.param_groups = []
        self.state = []  # one dict per parameter, in group order
        for group in self._groups_from(params):
            self.add_param_group(group)

    def _groups_from(self, params):
        """The constructor's argument as a list of group dicts."""
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Parameters "
                            f"(e.g. model.parameters()), got a single Tensor; wrap it in a list")
        if isinstance(params, dict):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of group dicts, "
                            f"got one dict; wrap it in a list: [{{'params': ..., 'lr': ...}}]")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list (did the model register its "
                             f"layers, and was model.parameters() already used up?)")
        if all(isinstance(g, dict) for g in params):
            return params
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                hint = " (a list mixes parameters and group dicts)" if isinstance(p, dict) else ""
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, "
                                f"not a Tensor/Parameter{hint}")
        return [{"params": params}]

    # --- groups ---------------------------------------------------------------------
    def add_param_group(self, group):
        """Add ``{"params": [...], option: value, ...}``; missing options take the defaults.

        The parameters already held keep their state. A parameter may belong to one
        group only."""
        index = len(self.param_groups)
        label = f"{type(self).__name__} param group {index}"
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{label}: expected a dict with a 'params' entry, got {type(group).__name__}"
                            + (f" with keys {sorted(group)}" if isinstance(group, dict) else ""))
        unknown = sorted(set(group) - {"params"} - set(self.hyperparameters))
        if unknown:
            raise ValueError(f"{label}: unknown option{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(map(repr, unknown))}; the options are "
                             f"{', '.join(self.hyperparameters)}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{label}: the group has no parameters")
        self._check_new_params(params, label)
        new = {"params": params}
        new.update({k: _option(group.get(k, self.defaults[k])) for k in self.hyperparameters})
        self._check_group(new, label if index else type(self).__name__)
        self.param_groups.append(new)
        self.state.extend({} for _ in params)

    def _check_new_params(self, params, label):
        held = {id(p): (g, j) for g, group in enumerate(self.param_groups)
                for j, p in enumerate(group["params"])}
        prefix = label if self.param_groups else type(self).__name__  # the first group: no number
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{prefix}: parameter {i} is a {type(p).__name__}, not a Tensor/Parameter")
            shape = tuple(p.shape)
            if not p.is_leaf:
                raise ValueError(f"{prefix}: parameter {i} (shape {shape}) is not a leaf; "
                                 f"optimizers update leaf tensors (Parameters), not results of ops")
            if id(p) in seen:
                raise ValueError(f"{prefix}: parameter {i} (shape {shape}) appears twice in the list")
            if id(p) in held:
                g, j = held[id(p)]
                raise ValueError(f"{prefix}: parameter {i} (shape {shape}) is already in "
                                 f"param group {g} (its parameter {j})")
            seen.add(id(p))

    def _check_group(self, group, label):
        if not group["lr"] >= 0:
            raise ValueError(f"{label}: lr must be non-negative, got {group['lr']}")

    @property
    def params(self):
        """Every parameter, group after group (the order of ``state``)."""
        return [p for group in self.param_groups for p in group["params"]]

    def _indexed(self):
        """(i, group, parameter) for every parameter; i indexes ``state``."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield i, group, p
                i += 1

    # --- opt.lr and the other options as attributes -----------------------------------
    def __getattr__(self, name):
        # only reached when ordinary lookup fails: options live in the groups
        if name in type(self).hyperparameters and "param_groups" in self.__dict__:
            values = [g[name] for g in self.param_groups]
            if any(v != values[0] for v in values):
                raise ValueError(f"{type(self).__name__}.{name}: the param groups differ ({values}); "
                                 f"read opt.param_groups[i][{name!r}]")
            return values[0]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self).hyperparameters and "param_groups" in self.__dict__:
            value = _option(value)
            for i, group in enumerate(self.param_groups):
                self._check_group({**group, name: value}, f"{type(self).__name__} param group {i}")
            for group in self.param_groups:
                group[name] = value
            return
        object.__setattr__(self, name, value)

    # --- the update ---------------------------------------------------------------------
    def zero_grad(self):
        """Forget every parameter's gradient (``.grad = None``), before the next backward."""
        for p in self.params:
            p.grad = None

    def step(self):
        """One update of every parameter that requires a gradient and has one."""
        for i, group, p in self._indexed():
            if not p.requires_grad or p.grad is None:
                continue
            g = p.grad.data
            if g.shape != p.shape:
                raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape {tuple(p.shape)} "
                                   f"has a gradient of shape {tuple(g.shape)}")
            self._update(p.data, g, self.state[i], group)
            p._bump_version()

    def _update(self, theta, grad, state, group):
        raise NotImplementedError

    # --- checkpoints --------------------------------------------------------------------
    def state_dict(self):
        """{'type', 'hyperparameters', 'param_groups', 'state'}: plain values and CPU array copies."""
        def copy(v):
            return np.array(backend.to_device(v, "cpu"), copy=True) if _is_array(v) else v
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({"params": list(range(start, start + n)),
                           **{k: group[k] for k in self.hyperparameters}})
            start += n
        return {
            "type": type(self).__name__,
            "hyperparameters": dict(self.defaults),
            "param_groups": groups,
            "state": [{k: copy(v) for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state):
        """Restore options, groups and per-parameter state saved by ``state_dict``.

        Everything is checked first; on any mismatch nothing is changed."""
        name = type(self).__name__
        if not isinstance(state, dict) or not {"hyperparameters", "state"} <= set(state):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'hyperparameters' and "
                             f"'state' (from state_dict()), got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        saved_type = state.get("type", name)
        if saved_type != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_type}, not {name}")
        per_param = list(state["state"])
        params = self.params
        if len(per_param) != len(params):
            raise ValueError(f"{name}.load_state_dict: the state has {len(per_param)} parameters, "
                             f"this optimizer has {len(params)}")
        defaults = {k: _option(v) for k, v in state["hyperparameters"].items()}
        groups = state.get("param_groups")
        if groups is None:  # written before param groups existed: one group of everything
            groups = [{"params": list(range(len(params))), **defaults}]
        problems = self._misfits(defaults, groups, per_param, params)
        if problems:
            raise ValueError(f"{name}.load_state_dict: the state does not fit:\n  " + "\n  ".join(problems))
        options = [{k: _option(g[k]) for k in self.hyperparameters} for g in groups]
        self._check_group(defaults, f"{name}.load_state_dict (defaults)")
        for i, (mine, opts) in enumerate(zip(self.param_groups, options)):
            self._check_group({**mine, **opts}, f"{name}.load_state_dict: param group {i}")
        self.defaults = {k: defaults[k] for k in self.hyperparameters}
        for mine, opts in zip(self.param_groups, options):
            mine.update(opts)
        # copies on each parameter's device, in its dtype; numbers (step counts) as they are
        self.state = [{k: (backend.to_device(v, p.device).astype(p.dtype, copy=True) if _is_array(v) else v)
                       for k, v in s.items()} for p, s in zip(params, per_param)]

    def _misfits(self, defaults, groups, per_param, params):
        """Every way a saved state fails to fit this optimizer, as lines for one error."""
        problems = [f"hyperparameter '{k}' is missing" for k in self.hyperparameters if k not in defaults]
        if len(groups) != len(self.param_groups):
            problems.append(f"the state has {len(groups)} param groups, this optimizer has "
                            f"{len(self.param_groups)}")
        start = 0
        for g, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            want = list(range(start, start + len(mine["params"])))
            start += len(mine["params"])
            if [int(i) for i in saved.get("params", ())] != want:
                problems.append(f"param group {g} holds parameters {list(saved.get('params', ()))} "
                                f"in the state, {want} here")
            problems += [f"param group {g}: option '{k}' is missing" for k in self.hyperparameters
                         if k not in saved]
        for i, (p, s) in enumerate(zip(params, per_param)):
            for k, v in s.items():
                if _is_array(v) and tuple(v.shape) != tuple(p.shape):
                    problems.append(f"parameter {i}: state '{k}' has shape {tuple(v.shape)}, "
                                    f"the parameter has shape {tuple(p.shape)}")
        return problems

    def __repr__(self):
        n = len(self.params)
        groups = "; ".join(", ".join(f"{k}={g[k]}" for k in self.hyperparameters) for g in self.param_groups)
        return f"{type(self).__name__}({groups}; {n} parameter{'s' if n != 1 else ''})"
