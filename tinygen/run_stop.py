"""How a training run ends before its budget is spent: a signal, or a loss that is no longer finite.

Ctrl-C, SIGTERM and SIGHUP
--------------------------
Each of the three sets a flag; the loop finishes the step it is in, then writes
the checkpoint first (the one thing that must not be lost), then the log row,
the pictures and metrics.json, and the run reports itself as interrupted by that
signal (the command line exits with 128 + its number: 130 for SIGINT, 143 for
SIGTERM, 129 for SIGHUP, as a shell reports a process the signal stopped). A run
whose last step was done when the signal came is complete, not interrupted. A
signal the parent set to be ignored (``nohup``, a shell's background job) stays
ignored. Every file is written to a temporary name and renamed, so a second
signal, which stops at once, can leave an older file but never a half-written one.

A diverged run
--------------
A loss that is not finite (NaN or infinite) means the parameters are lost: the
loop stops at that step and raises ``Diverged``, naming the step and the loss
(``check_finite``). No checkpoint is written after it, so checkpoint.npz keeps
the last good state.
"""
import math
import signal
import threading

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Diverged(RuntimeError):
    """A training loss that is not finite: the run stopped at ``step``, its checkpoint the last good one."""

    def __init__(self, step, name, value, message):
        self.step, self.name, self.value = step, name, value
        super().__init__(message)


class StopOnSignal:
    """Handler of SIGINT, SIGTERM and SIGHUP: the first asks the loop to stop after this step;
    a second one stops now. ``signum`` is the first one's number (None: none came)."""

    def __init__(self):
        self.signum, self.previous = None, {}

    @property
    def requested(self):
        return self.signum is not None

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        # signal handlers can only be set from the main thread (a loop in a thread keeps them as they are)
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:   # the parent's choice to ignore it stands
                    self.previous[sig] = signal.signal(sig, self)
        return self

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            # None: the previous handler was not set from Python; the default is the closest match
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


def check_finite(losses, step, model, kept, lr=None):
    """Raise ``Diverged`` at the first loss of ``losses`` (a step's dict) that is NaN or infinite.

    ``kept`` says in words what checkpoint the stop leaves; ``lr`` the run's learning rate, for the hint.
    """
    for name, value in losses.items():
        value = float(value)
        if not math.isfinite(value):
            hint = f"; try a smaller --lr than {lr:g}" if lr is not None else "; try a smaller --lr"
            raise Diverged(step, name, value, f"{model} diverged: its {name} loss is {value} at step "
                           f"{step}; stopped there, and {kept}{hint}")
