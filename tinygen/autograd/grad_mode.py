"""Whether ops record a graph.

Inside ``no_grad()`` every op returns plain results with no ``creator``: nothing
is kept for a backward pass. The graph walk itself runs backward functions under
``no_grad`` unless ``create_graph=True`` was asked for, so an ordinary backward
pass builds no second graph; with ``create_graph=True`` the gradients are Tensors
with a graph of their own and can be differentiated again.
"""
import functools

_state = {"enabled": True}


def is_grad_enabled():
    return _state["enabled"]


class _GradMode:
    mode = True

    def __enter__(self):
        self._prev = _state["enabled"]
        _state["enabled"] = self.mode
        return self

    def __exit__(self, *exc):
        _state["enabled"] = self._prev
        return False

    def __call__(self, func):  # also usable as a decorator
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager (or decorator): ops inside record no graph."""
    mode = False


class enable_grad(_GradMode):
    """Context manager (or decorator): ops inside record a graph again."""
    mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        self.mode = bool(mode)

    def __call__(self, func):
        raise TypeError("set_grad_enabled is a context manager, not a decorator")
