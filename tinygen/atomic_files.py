"""Files that no reader and no crash ever sees half-written: a temporary file, then a rename.

``atomic_write(path, write)`` hands ``write`` a binary file that is a uniquely named
temporary in the target folder, and renames it over ``path`` once ``write`` returns.
If ``write`` raises (a full disk, a value that cannot be stored), the temporary is removed
and the old file is left as it was. ``durable`` (checkpoints) also ``fsync``s the bytes
before the rename and the folder after it, so that a power cut cannot leave the new name
pointing at bytes that never reached the disk. The new file keeps the old one's permission
bits (``file_mode``), where ``mkstemp`` alone would make it 0600.

Checkpoints (``serialization.save``), pictures (``imaging``) and the run's text files
(``run_files``) are all written through it.
"""
import os
import tempfile


def atomic_write(path, write, durable=False):
    """Write the file ``path`` through ``write(f)`` (f: a binary file), so that no reader and no
    crash ever sees it half-written: a uniquely named temporary file in the same folder, then a
    rename. ``durable`` also syncs the bytes and the folder to disk (checkpoints)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The temporary file sits in the target folder: os.replace is atomic only
    # within one file system, and a leading dot keeps it out of directory listings.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode(path))   # mkstemp makes 0600; keep the old file's mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)   # a full disk must not leave a half-written temporary behind
        except OSError:
            pass
        raise
    if durable:
        _fsync_folder(folder)


def file_mode(path):
    """The permission bits a file written at ``path`` should get: the existing file's, or the umask's."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)   # reading the umask means setting it; put it straight back
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
