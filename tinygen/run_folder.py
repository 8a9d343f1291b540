"""The folder a run writes in: its name checked, one process at a time, the files that make it a run.

``tinygen train`` and ``tinygen zoo`` check ``--out`` before anything is written
(``check_out_folder``): an empty name would mean the current folder, a file or a
place that cannot hold a folder is one line saying so. A folder holds a run when
it has any of the files a run writes (``run_files``); a new run is refused there
unless asked to replace it, and then the old run's files go first (``clear_run_files``).

One run per folder
------------------
A run holds an exclusive lock on ``.lock`` in its folder from before it reads the
checkpoint until its last file is written, so a second process on the same folder
is refused at once ("runs/nade is in use by process 1234") instead of mixing its
rows into the first one's log. The lock is the kernel's: it goes with the process,
also when the process is killed, so a stale lock file never blocks a later run.
"""
import errno
import fcntl
import json
import os

from .run_config import UsageError
from .run_files import CHECKPOINT, LOG, LOSSES, METRICS, SAMPLES

LOCK = ".lock"


def check_out_folder(out, create=True):
    """``out`` as a folder a run can write in; an empty name, a file or an unwritable place is a UsageError."""
    if not str(out).strip():
        raise UsageError("--out is empty; name the run's folder (default runs/MODEL)")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file, not a folder; name a folder for the run")
    if create:
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None


class FolderLock:
    """An exclusive lock on a run folder, held while the ``with`` block runs (``fcntl.flock``).

    The holder writes its process id into the lock file, so the refused process can say who holds it.
    """

    def __init__(self, folder):
        self.folder, self.fd = str(folder), None

    def __enter__(self):
        try:
            fd = os.open(os.path.join(self.folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write in the run folder {self.folder} ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise UsageError(f"cannot lock the run folder {self.folder} ({exc.strerror or exc})") from None
            raise UsageError(f"{self.folder} is in use by process {holder or '(starting)'}: another run "
                             "is writing there; wait for it, or give another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd
        return self

    def __exit__(self, *exc):
        os.close(self.fd)   # closing the descriptor releases the lock
        self.fd = None


def run_files(out):
    """The files of a run that ``out`` holds (names relative to ``out``), in a fixed order."""
    names = [n for n in (CHECKPOINT, LOG, METRICS, SAMPLES, LOSSES) if os.path.exists(os.path.join(out, n))]
    grids = sorted(os.path.join("samples", g) for g in _grids(out))
    return names + _pictures(out) + grids


def _pictures(out):
    """The model's own pictures (reconstructions.png, latent.png ...) that metrics.json lists."""
    try:
        with open(os.path.join(out, METRICS), encoding="utf-8") as f:
            listed = json.load(f).get("pictures") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in listed if isinstance(n, str) and n.endswith(".png") and os.path.basename(n) == n
            and n not in (SAMPLES, LOSSES) and os.path.exists(os.path.join(out, n))]


def _grids(out):
    folder = os.path.join(out, "samples")
    if not os.path.isdir(folder):
        return []
    return [g for g in os.listdir(folder) if g.startswith("step-") and g.endswith(".png")]


def clear_run_files(out):
    """Remove an earlier run's files (``--overwrite``), the lock and other files left alone."""
    for name in run_files(out):
        os.remove(os.path.join(out, name))
