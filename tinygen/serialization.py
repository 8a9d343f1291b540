"""Checkpoints: ``save(state, path)`` and ``load(path)`` with ``.npz`` files and no pickle.

A checkpoint holds a nested dict: model parameters, optimizer moments, the step
count, the random generator's state, the run's options. Python's ``pickle``
would store all of that in one call, but loading a pickle runs whatever code the
file names, so a checkpoint downloaded from somewhere could take over the
machine. tinygen's files are plain ``.npz`` archives read with
``numpy.load(allow_pickle=False)``: loading one can only ever produce arrays,
numbers and strings.

Layout of the archive
---------------------
- Every array in the state is one ``.npy`` member, named by its path in the
  nested structure with ``/`` between the levels, so
  ``state["model"]["fc1.weight"]`` is the member ``model/fc1.weight`` and
  ``numpy.load`` alone can read a tinygen checkpoint. List and tuple items use
  their index (``optimizer/state/0/exp_avg``). Within one key, ``%`` and ``/``
  (and backslashes and control characters) are written ``%XX`` so a key that
  contains a slash cannot be confused with two levels; dots need no escaping.
  An empty key is written as a lone ``%``.
- One member, ``%tinygen``, is the manifest: UTF-8 JSON bytes listing every
  node of the structure in depth-first order as ``[path, tag, value]``. The tag
  says what to rebuild: ``dict``/``list``/``tuple`` (value: number of children,
  which follow), ``array`` (the member at ``path``), ``npscalar`` (a NumPy scalar,
  kept as a 0-d member), ``int`` (value: decimal string, so ints of any size
  round-trip, such as the 128-bit state of numpy's PCG64 generator), ``float``
  (value: ``repr``, exact, also ``nan``/``inf``), ``bool``, ``str``, ``none``.
  No user key can produce the name ``%tinygen``, because a ``%`` in a key is
  always escaped to ``%25``.

Writing is atomic: the archive goes to a temporary file with a unique name in
the target folder, is flushed and ``fsync``-ed, then renamed over ``path`` with
``os.replace`` (``atomic_files``). A crash mid-save leaves the previous checkpoint intact, never a
half-written one, and an existing file keeps its permission bits.

Reading is bounded
------------------
A deflated member can claim to hold far more than the file's size. ``load``
reads the manifest first (at most ``MAX_MANIFEST_BYTES``), then only the header
of every array member: its ``.npy`` header declares shape and dtype, so its size
is ``header + prod(shape) * itemsize`` bytes, which must equal the size the zip
directory declares for the member (and the zip reader never inflates a member
past that). ``load(path, check=...)`` hands ``check`` the structure with every
array as an ``ArrayInfo(shape, dtype)`` before any array is inflated, so a
caller can refuse a file of the wrong model or of absurd shapes cheaply.
"""
import json
import math
import os
import zipfile
from collections import namedtuple

import numpy as np

from .atomic_files import atomic_write

FORMAT = "tinygen-checkpoint"
VERSION = 1
MANIFEST = "%tinygen"  # '%' is always escaped in keys, so no user key maps here

MAX_MANIFEST_BYTES = 64 * 2**20   # a manifest lists nodes, not values: megabytes at most

ArrayInfo = namedtuple("ArrayInfo", ["shape", "dtype"])
ArrayInfo.__doc__ = "An array member as its header declares it, before it is read (``load``'s ``check``)."

_CONTAINERS = ("dict", "list", "tuple")
_SUPPORTED = ("dict (str keys), list, tuple, numpy array or scalar, tinygen Tensor, "
              "int, float, bool, str, None")


class CheckpointError(ValueError):
    """A file that is not a readable tinygen checkpoint, or a state that cannot be saved."""


# --- key escaping ------------------------------------------------------------

def _escape(key):
    if key == "":
        return "%"
    out = []
    for ch in key:
        if ch in "%/\\" or ord(ch) < 32 or ord(ch) == 127:
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _unescape(component):
    if component == "%":
        return ""
    out, i = [], 0
    while i < len(component):
        if component[i] == "%":
            out.append(chr(int(component[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(component[i])
            i += 1
    return "".join(out)


def _join(path, component):
    return component if path == "" else f"{path}/{component}"


def _show(path):
    """A path as the user wrote it, for messages: model['fc1.weight'] -> 'model/fc1.weight'."""
    return "/".join(_unescape(c) for c in path.split("/")) if path else "<root>"


# --- save --------------------------------------------------------------------

def _to_numpy(value):
    """NumPy array for a tinygen Tensor or a CuPy array; None for anything else."""
    import tinygen
    tensor_class = getattr(tinygen, "Tensor", None)
    if tensor_class is not None and isinstance(value, tensor_class):
        return np.asarray(value.numpy())
    if type(value).__module__.split(".")[0] == "cupy" and hasattr(value, "get"):
        return value.get()
    return None


def _flatten(value, path, rows, arrays, inside=()):
    """Append ``value``'s manifest rows (depth first) and array members.

    ``inside`` holds the ids of the containers on the way down, so a structure
    that contains itself is refused instead of recursing until Python gives up.
    """
    if isinstance(value, (dict, list, tuple)):
        if id(value) in inside:
            raise CheckpointError(f"save: the state contains itself at {_show(path)!r} (a container "
                                  "inside its own contents); a checkpoint holds a tree")
        inside = inside + (id(value),)
    if isinstance(value, dict):
        rows.append([path, "dict", len(value)])
        for key, child in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"save: dict keys must be strings; got key {key!r} "
                                      f"({type(key).__name__}) in {_show(path)!r}")
            _flatten(child, _join(path, _escape(key)), rows, arrays, inside)
        return
    if isinstance(value, (list, tuple)):
        rows.append([path, "tuple" if isinstance(value, tuple) else "list", len(value)])
        for i, child in enumerate(value):
            _flatten(child, _join(path, str(i)), rows, arrays, inside)
        return
    if value is None:
        rows.append([path, "none", None])
    elif isinstance(value, bool):
        rows.append([path, "bool", value])
    elif isinstance(value, np.generic):
        # A NumPy scalar keeps its exact dtype as a 0-d member.
        _add_array(np.asarray(value), path, "npscalar", rows, arrays)
    elif isinstance(value, int):
        rows.append([path, "int", str(int(value))])  # decimal text: any size round-trips
    elif isinstance(value, float):
        rows.append([path, "float", repr(float(value))])
    elif isinstance(value, str):
        rows.append([path, "str", value])
    elif isinstance(value, np.ndarray):
        _add_array(value, path, "array", rows, arrays)
    else:
        converted = _to_numpy(value)
        if converted is None:
            raise CheckpointError(f"save: cannot store a {type(value).__module__}.{type(value).__qualname__} "
                                  f"at {_show(path)!r}; a checkpoint holds only {_SUPPORTED}")
        _add_array(converted, path, "array", rows, arrays)


def _add_array(array, path, tag, rows, arrays):
    if array.dtype.hasobject:
        raise CheckpointError(f"save: the array at {_show(path)!r} has dtype {array.dtype} (Python "
                              f"objects, shape {array.shape}), which only pickle can store, and "
                              "tinygen checkpoints never use pickle; convert it to a numeric or "
                              "string dtype, or store it as a list")
    rows.append([path, tag, None])
    arrays[path] = array


def save(state, path, compress=False):
    """Write the nested dict ``state`` to ``path`` (an ``.npz`` archive), atomically.

    ``state`` may nest dicts with str keys, lists and tuples of: NumPy arrays and
    scalars, tinygen Tensors (saved as their ``.numpy()``), ints of any size,
    floats, bools, strings and None. ``load(path)`` gives back the same structure,
    with arrays as NumPy arrays. The file is written exactly at ``path`` (no
    suffix is added); missing parent folders are created. ``compress=True`` uses
    zip deflate: smaller, slower.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"save: state must be a dict (e.g. {{'model': model.state_dict()}}), "
                              f"got {type(state).__name__}")
    rows, arrays = [], {}
    _flatten(state, "", rows, arrays)
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "nodes": rows},
                          ensure_ascii=False, allow_nan=False)
    members = {MANIFEST: np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)}
    members.update(arrays)

    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"save: {path!r} is a folder; give a file name, e.g. "
                              f"{os.path.join(path, 'checkpoint.npz')!r}")
    atomic_write(path, lambda f: _write_npz(f, members, compress), durable=True)


def _write_npz(f, members, compress):
    """Write ``members`` (name -> array) as an .npz archive: a zip of ``name.npy`` files.

    This is what ``numpy.savez`` does, written out because ``savez`` takes the
    names as keyword arguments, and a state key called ``file`` or
    ``allow_pickle`` would collide with its own parameters.
    """
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=mode, allowZip64=True) as archive:
        for name, array in members.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


# --- load --------------------------------------------------------------------

def load(path, check=None):
    """Read a checkpoint written by ``save`` and rebuild its nested structure.

    Arrays come back as NumPy arrays with their saved dtype; put them on a device
    with ``load_state_dict`` or ``tinygen.tensor``. Never unpickles anything.
    ``check``, if given, is called with the structure in which every array is an
    ``ArrayInfo(shape, dtype)``, before any array is read; whatever it raises
    propagates. Raises ``FileNotFoundError`` when ``path`` does not exist and
    ``CheckpointError`` (a ``ValueError``) naming ``path`` when the file is
    truncated, corrupt, or not a tinygen checkpoint.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise CheckpointError(f"load: {path!r} is a folder, not a checkpoint file")
    with _open_archive(path) as archive:
        nodes, headers = _guarded(path, _contents, archive, path)
        if check is not None:
            check(_guarded(path, _rebuild, nodes, headers.info, path))   # its refusal is the caller's
        return _guarded(path, _rebuild, nodes, headers.read, path)


def _guarded(path, fn, *args):
    """``fn(*args)``, any error but a CheckpointError reported as a damaged file."""
    try:
        return fn(*args)
    except CheckpointError:
        raise
    except Exception as exc:  # a member cut short, a bad CRC, ...
        raise CheckpointError(f"load: {path!r} is damaged and cannot be read: "
                              f"{type(exc).__name__}: {exc}") from None


def _contents(archive, path):
    """The manifest's nodes (read first, bounded) and the archive's array members."""
    members = _members(archive)
    if MANIFEST not in members:
        names = sorted(members)
        raise CheckpointError(f"load: {path!r} is an .npz archive but not a tinygen checkpoint "
                              f"(it has no {MANIFEST!r} manifest; members: "
                              f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); "
                              "read it with numpy.load instead")
    info = members[MANIFEST]
    if info.file_size > MAX_MANIFEST_BYTES:
        raise CheckpointError(f"load: {path!r} declares a manifest of {info.file_size} bytes, more "
                              f"than the {MAX_MANIFEST_BYTES} a manifest can need")
    nodes = _read_manifest(_read_member(archive, info, path), path)["nodes"]
    return nodes, _Headers(archive, members, path)


def _rebuild(nodes, array, path):
    state, end = _build(nodes, 0, array, path)
    if end != len(nodes) or not isinstance(state, dict):
        raise CheckpointError(f"load: {path!r} has a malformed manifest (structure does not "
                              "close where the node list ends)")
    return state


def _open_archive(path):
    try:
        return zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, OSError, EOFError, ...
        with open(path, "rb") as f:
            start = f.read(6)
        if start == b"\x93NUMPY":
            raise CheckpointError(f"load: {path!r} is a single .npy array, not a tinygen checkpoint "
                                  "(.npz archive written by tinygen.save)") from None
        raise CheckpointError(f"load: {path!r} is not a readable .npz checkpoint (truncated, corrupt "
                              f"or another kind of file): {type(exc).__name__}: {exc}") from None


def _members(archive):
    """Member name (``.npy`` dropped, as numpy.load names them) -> its ZipInfo."""
    return {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in archive.infolist()}


class _Headers:
    """The array members of an archive, each checked against its own header before it is read."""

    def __init__(self, archive, members, path):
        self.archive, self.members, self.path, self.seen = archive, members, path, {}

    def _member(self, name):
        if name not in self.members:
            raise CheckpointError(f"load: {self.path!r} lists an array {_show(name)!r} that the archive "
                                  "does not contain")
        return self.members[name]

    def info(self, name):
        """``ArrayInfo`` from the member's ``.npy`` header; its size must be what the zip declares."""
        if name not in self.seen:
            member = self._member(name)
            with self.archive.open(member) as f:
                shape, dtype, header_bytes = _npy_header(f, self.path, name)
            expected = header_bytes + math.prod(shape) * dtype.itemsize
            if member.file_size != expected:
                raise CheckpointError(f"load: {self.path!r}: array {_show(name)!r} has a header saying "
                                      f"shape {shape} of {dtype} ({expected} bytes with the header), but "
                                      f"the archive declares {member.file_size} bytes for it")
            self.seen[name] = ArrayInfo(shape, dtype)
        return self.seen[name]

    def read(self, name):
        self.info(name)   # checked first: the read below inflates at most what was declared
        return _read_member(self.archive, self.members[name], self.path)


def _npy_header(f, path, name):
    """(shape, dtype, header size in bytes) of an ``.npy`` stream; object dtypes are refused."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(f)
    else:   # (3, 0): a UTF-8 header; numpy reads it only through its private helper
        shape, _, dtype = fmt._read_array_header(f, version)
    if dtype.hasobject:
        raise CheckpointError(f"load: {path!r}: array {_show(name)!r} holds Python objects (dtype "
                              f"{dtype}), which only pickle can read; tinygen never unpickles")
    return tuple(int(d) for d in shape), dtype, f.tell()


def _read_member(archive, member, path):
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_manifest(raw, path):
    try:
        manifest = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"load: {path!r} has an unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"load: {path!r} has a {MANIFEST!r} member that is not a tinygen manifest")
    version = manifest.get("version")
    if version != VERSION:
        raise CheckpointError(f"load: {path!r} is checkpoint format version {version!r}; this tinygen "
                              f"reads version {VERSION} (was it written by a newer tinygen?)")
    if not isinstance(manifest.get("nodes"), list) or not manifest["nodes"]:
        raise CheckpointError(f"load: {path!r} has a manifest with no nodes")
    return manifest


def _build(nodes, i, array, path):
    """Rebuild the node at ``nodes[i]``; return it and the index after its subtree.

    ``array(member name)`` gives an array node's value (the array, or its ``ArrayInfo``).
    Recursion depth is the nesting depth of the state (a handful of levels), not
    its size.
    """
    try:
        node_path, tag, value = nodes[i]
    except (IndexError, TypeError, ValueError):
        raise CheckpointError(f"load: {path!r} has a malformed manifest at node {i}") from None
    i += 1
    if tag in _CONTAINERS:
        keys, children = [], []
        for _ in range(int(value)):
            if i >= len(nodes):
                raise CheckpointError(f"load: {path!r} has a malformed manifest: "
                                      f"{_show(node_path)!r} lists more children than there are nodes")
            child_path = str(nodes[i][0])
            # A dict child's key is the last component of its path, unescaped.
            keys.append(_unescape(child_path.rsplit("/", 1)[-1]))
            child, i = _build(nodes, i, array, path)
            children.append(child)
        if tag == "dict":
            return dict(zip(keys, children)), i
        return (tuple(children) if tag == "tuple" else children), i
    if tag in ("array", "npscalar"):
        value = array(node_path)
        return (value[()] if tag == "npscalar" and isinstance(value, np.ndarray) else value), i
    if tag == "none":
        return None, i
    if tag == "bool":
        return bool(value), i
    if tag == "int":
        return int(value), i
    if tag == "float":
        return float(value), i
    if tag == "str":
        return str(value), i
    raise CheckpointError(f"load: {path!r} has an unknown tag {tag!r} at {_show(node_path)!r}")
