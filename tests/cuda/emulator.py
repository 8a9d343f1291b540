"""Run tinygen's CUDA kernels on the CPU: the same ``.cu`` file, compiled by g++.

A machine without a GPU (this one, CI) can still check the kernels' arithmetic
and their synchronisation. ``g++ -std=c++20 -include simt.h`` compiles the
unchanged CUDA source; ``simt.h`` defines what CUDA adds to C++ (``__global__``,
``__shared__``, ``threadIdx``, ``__syncthreads()``, warp shuffles, atomics) and
``simt_runtime.cpp`` runs a launch with one fiber per GPU thread, switching
threads only at barriers (see the header comment of each file). This module
compiles, caches and calls it, with the interface of a CuPy ``RawKernel``::

    kernel = load("conv2d.cu", "im2col_f32")        # a file in tinygen's kernels/
    kernel(grid, block, (x, cols, np.int32(N), ...), shared_mem=0, order="reverse")

    module = Module(code=SOURCE, name="tests.cu")    # kernels from a string
    module.get_function("reduce")(...)

Arguments are NumPy arrays (the kernel gets a pointer to a copy and the copy
is written back, so arrays change in place as CuPy arrays do) and Python or
NumPy scalars, converted to the parameter types the kernel declares; a dtype
that does not match the parameter's is an error, not a silent reinterpretation.
Each array is copied between two guard zones of 0xFF bytes: a kernel reading
past an array's ends reads NaN, and one writing there is reported.

``order`` picks how the threads of a block take turns between barriers:
``"forward"`` (thread 0 first), ``"reverse"`` or ``"random"`` (a permutation
drawn anew at every barrier from ``seed``). A correct kernel gives the same
result in every order; a missing barrier shows up as a difference (or NaN,
since shared memory starts as 0xFF bytes).

Compiled libraries are cached in the temporary folder under a hash of
everything that goes into them, so each kernel file compiles once per change.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIMT_H = HERE / "simt.h"
RUNTIME = HERE / "simt_runtime.cpp"
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ("-std=c++20", "-O1", "-g0", "-fPIC", "-shared", "-fvisibility=hidden")
CACHE = Path(tempfile.gettempdir()) / f"tinygen-simt-{os.getuid() if hasattr(os, 'getuid') else 'user'}"

ORDERS = {"forward": 0, "reverse": 1, "random": 2}
MAX_THREADS_PER_BLOCK = 1024
DYNAMIC_SHARED_BYTES = 48 * 1024   # CUDA's default limit without opting in to more
GUARD_BYTES = 256                  # 0xFF bytes on each side of every array argument


class EmulatorError(RuntimeError):
    """Something the emulator cannot do or did not get past."""


class NotEmulated(EmulatorError):
    """The source uses a CUDA feature the emulator does not model."""


class CompileError(EmulatorError):
    """g++ rejected the source (the message holds its diagnostics)."""


class LaunchError(EmulatorError):
    """A launch failed: a barrier error, a deadlock, a stray write, bad arguments."""


def available():
    """True where the emulator can run: Linux (ucontext, ELF TLS) with a C++ compiler."""
    return sys.platform.startswith("linux") and shutil.which(CXX) is not None


# --- reading the source -----------------------------------------------------------

def _strip_comments(text):
    """``text`` with comments blanked (newlines kept, so line numbers still match)."""
    def blank(match):
        return re.sub(r"[^\n]", " ", match.group(0))
    return re.sub(r"//[^\n]*|/\*.*?\*/", blank, text, flags=re.S)


def _strip_strings(text):
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


_ALLOWED_SYSTEM_HEADERS = {"cstdint", "stdint.h", "climits", "limits.h", "cfloat", "float.h", "cmath", "math.h"}

# (pattern, why) pairs: what the emulator refuses, found by scanning the source
# with comments and string literals removed.
_REFUSED = [
    (r"\b(asm|__asm__|__asm)\b", "inline assembly (asm) is PTX for the GPU and cannot run on the CPU"),
    (r"\bcooperative_groups\b|\bcg::|\bthis_grid\s*\(",
     "cooperative groups (grid-wide or cluster-wide synchronisation) are not emulated"),
    (r"\b__constant__\b", "__constant__ memory is filled from the host (cudaMemcpyToSymbol), which this launch "
                          "interface cannot do; pass the values through a pointer argument"),
    (r"\b(tex[123]D\w*|tex1Dfetch|surf[123]D\w*|cudaTextureObject_t|cudaSurfaceObject_t)\b|\btexture\s*<",
     "textures and surfaces are not emulated"),
    (r"\b(wmma|mma_sync|__ldmatrix\w*|__mma\w*)\b", "tensor-core instructions (wmma/mma) are not emulated"),
    (r"\b(__half2?|__nv_bfloat16\w*|__float2half\w*|__half2float)\b", "half-precision types are not emulated"),
    (r"<<<", "dynamic parallelism (a kernel launching kernels) is not emulated"),
    (r"\b__managed__\b", "__managed__ variables are not emulated"),
    (r"\b__shfl(_up|_down|_xor)?\s*\(", "__shfl* without _sync were removed from CUDA (they race since Volta); "
                                       "use __shfl*_sync(mask, ...)"),
    (r"\b(__nanosleep|clock64|__globaltimer)\b", "timers and sleeping are not emulated"),
    (r"\b__(match_any|match_all|reduce_\w+)_sync\b", "__match_*_sync and __reduce_*_sync are not emulated"),
    (r"\bthread_local\b", "thread_local cannot be used in kernels here: the emulator implements __shared__ "
                          "with it (see simt.h)"),
]


def _check_supported(text, name):
    """Raise NotEmulated if ``text`` uses what the emulator cannot model."""
    code = _strip_strings(_strip_comments(text))
    if code.startswith("#line 1 "):   # a source string (Module(code=...)): count lines from the next one
        code = code[code.index("\n") + 1:]
    for pattern, why in _REFUSED:
        match = re.search(pattern, code)
        if match:
            line = code.count("\n", 0, match.start()) + 1
            raise NotEmulated(f"{name}:{line}: `{match.group(0).strip()}`: {why}")
    for match in re.finditer(r"#\s*include\s*<([^>]+)>", code):
        if match.group(1).strip() not in _ALLOWED_SYSTEM_HEADERS:
            line = code.count("\n", 0, match.start()) + 1
            raise NotEmulated(f"{name}:{line}: #include <{match.group(1)}>: CUDA and library headers are not "
                              f"available to the emulator (nor to NVRTC without include paths); keep kernels "
                              f"self-contained")


def _local_headers(text, folder):
    """The ``#include "..."`` files of ``text`` (recursively), as (path, text) pairs."""
    found, todo = {}, [(text, folder)]
    while todo:
        source, where = todo.pop()
        for match in re.finditer(r'#\s*include\s*"([^"]+)"', _strip_comments(source)):
            path = (where / match.group(1)).resolve()
            if path not in found and path.is_file():
                found[path] = path.read_text(encoding="utf-8")
                todo.append((found[path], path.parent))
    return sorted(found.items())


_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+'
                     r'(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)')
_DYNAMIC_SHARED = re.compile(r'extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?'
                             r'((?:const\s+)?(?:unsigned\s+|signed\s+)?(?:long\s+)?\w+)\s+'
                             r'(?:__align__\s*\(\s*\d+\s*\)\s*)?(\w+)\s*\[\s*\]\s*;')


def kernels_in(text):
    """{kernel name: [parameter names]} of the ``extern "C" __global__`` functions in ``text``."""
    kernels = {}
    for match in _KERNEL.finditer(_strip_comments(text)):
        params = [p.strip() for p in match.group(2).split(",") if p.strip() and p.strip() != "void"]
        kernels[match.group(1)] = [re.findall(r"\w+", p)[-1] for p in params]
    return kernels


def _dynamic_shared(text, name):
    """{variable: type} for the ``extern __shared__ T variable[];`` declarations."""
    declared = {}
    for match in _DYNAMIC_SHARED.finditer(_strip_comments(text)):
        ctype, var = " ".join(match.group(1).split()), match.group(2)
        if declared.get(var, ctype) != ctype:
            raise NotEmulated(f"{name}: extern __shared__ {var} is declared as both {declared[var]}[] and "
                              f"{ctype}[]; give the arrays different names")
        declared[var] = ctype
    return declared


# --- compiling ------------------------------------------------------------------

def _compiler_version():
    try:
        return subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise EmulatorError(f"the emulator needs a C++20 compiler ({CXX!r}): {error}") from None


def _entry_file(source_path, kernels, shared):
    """The C++ file that is compiled: the kernel source, its dynamic shared memory, entry points."""
    lines = [f"// Generated by tests/cuda/emulator.py for {source_path.name}; do not edit.",
             f'#include "{source_path}"',
             "",
             "// Dynamic shared memory: the arrays the kernels declare `extern __shared__`",
             f"// ({DYNAMIC_SHARED_BYTES} bytes each; thread_local like all shared memory, see simt.h)."]
    for var, ctype in shared.items():
        lines.append(f"alignas(16) __attribute__((used)) thread_local {ctype} {var}[{DYNAMIC_SHARED_BYTES} / sizeof({ctype})];")
    lines += ["", "// One simt_entry_<name> / simt_signature_<name> pair per kernel."]
    lines += [f"SIMT_KERNEL({name})" for name in kernels]
    return "\n".join(lines) + "\n"


_compile_lock = threading.Lock()


def _compile(source_path, text, display_name):
    """Compile ``text`` (the contents of ``source_path``) into a cached shared library."""
    if not available():
        raise EmulatorError(f"the CUDA emulator needs Linux and a C++20 compiler ({CXX!r} not found)")
    _check_supported(text, display_name)
    headers = _local_headers(text, source_path.parent)
    for path, header in headers:
        _check_supported(header, path.name)
    kernels = kernels_in(text)
    if not kernels:
        raise EmulatorError(f'{display_name}: no `extern "C" __global__ void name(...)` kernels found')
    shared = _dynamic_shared(text + "".join(h for _, h in headers), display_name)
    entry = _entry_file(source_path, kernels, shared)

    key = hashlib.sha256()
    for part in (text, entry, SIMT_H.read_text(), RUNTIME.read_text(), " ".join(CXXFLAGS), _compiler_version(),
                 *(h for _, h in headers)):
        key.update(part.encode())
        key.update(b"\0")
    CACHE.mkdir(parents=True, exist_ok=True)
    library = CACHE / f"{source_path.stem}-{key.hexdigest()[:20]}.so"
    with _compile_lock:
        if not library.exists():
            # Private names while compiling, then atomic renames: another process
            # (pytest-xdist) compiling the same file never sees half a file.
            entry_path = library.with_suffix(f".{os.getpid()}.entry.cpp")
            entry_path.write_text(entry)
            partial = library.with_suffix(f".{os.getpid()}.tmp")
            command = [CXX, *CXXFLAGS, "-include", str(SIMT_H), "-x", "c++", str(entry_path), str(RUNTIME),
                       "-o", str(partial), "-ldl"]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                partial.unlink(missing_ok=True)
                entry_path.unlink(missing_ok=True)
                raise CompileError(f"g++ could not compile {display_name} against simt.h:\n{result.stderr.strip()}")
            os.replace(entry_path, library.with_suffix(".entry.cpp"))   # kept, for reading
            os.replace(partial, library)
    return library, kernels


# --- calling ------------------------------------------------------------------------

_SCALARS = {  # signature code -> (ctypes type, numpy dtype)
    "b1": (ctypes.c_bool, np.bool_),
    "i1": (ctypes.c_int8, np.int8), "i2": (ctypes.c_int16, np.int16),
    "i4": (ctypes.c_int32, np.int32), "i8": (ctypes.c_int64, np.int64),
    "u1": (ctypes.c_uint8, np.uint8), "u2": (ctypes.c_uint16, np.uint16),
    "u4": (ctypes.c_uint32, np.uint32), "u8": (ctypes.c_uint64, np.uint64),
    "f4": (ctypes.c_float, np.float32), "f8": (ctypes.c_double, np.float64),
}


def _dim3(value, what):
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or any(not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise LaunchError(f"{what} must be a positive int or a tuple of 1 to 3 positive ints, got {value!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


class Module:
    """The kernels of one ``.cu`` file (``path``) or source string (``code``), like ``cupy.RawModule``."""

    _loaded = {}   # library path -> (ctypes.CDLL, lock): each library is opened once per process,
                   # and its launches take turns (the runtime's scheduler state is one per library)

    def __init__(self, path=None, code=None, name=None):
        if (path is None) == (code is None):
            raise TypeError("Module takes exactly one of path= and code=")
        if path is not None:
            path = Path(path).resolve()
            text, display_name = path.read_text(encoding="utf-8"), path.name
        else:
            display_name = name or "kernel.cu"
            # '#line' makes g++'s messages (and ours) name the snippet, not the cache file.
            text = f'#line 1 "{display_name}"\n{code}'
            CACHE.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"\W", "_", Path(display_name).stem)
            path = CACHE / f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.cu"
            if not path.exists():
                partial = path.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(text)
                os.replace(partial, path)
        self.name = display_name
        library, self.parameters = _compile(path, text, display_name)
        if library not in Module._loaded:
            Module._loaded[library] = (ctypes.CDLL(str(library)), threading.Lock())
        self.lib, self.lock = Module._loaded[library]
        self.lib.simt_launch.restype = ctypes.c_int
        self.lib.simt_launch.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                         ctypes.c_int, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulong]

    @property
    def kernels(self):
        return sorted(self.parameters)

    def get_function(self, name, order="forward", seed=0):
        if name not in self.parameters:
            raise EmulatorError(f"{self.name} has no kernel {name!r}; its kernels: {', '.join(self.kernels)}")
        return Kernel(self, name, order, seed)


class Kernel:
    """One kernel, called as ``kernel(grid, block, args, shared_mem=0, order=..., seed=...)``."""

    def __init__(self, module, name, order="forward", seed=0):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {sorted(ORDERS)}, got {order!r}")
        self.module, self.name, self.order, self.seed = module, name, order, seed
        lib = module.lib
        self._entry = ctypes.cast(getattr(lib, f"simt_entry_{name}"), ctypes.c_void_p)
        signature = getattr(lib, f"simt_signature_{name}")
        signature.restype = ctypes.c_char_p
        self.types = [t for t in signature().decode().split(",") if t]   # e.g. ["*cf4", "*f4", "i4"]
        names = module.parameters[name]
        self.names = names if len(names) == len(self.types) else [f"#{k}" for k in range(len(self.types))]

    def with_order(self, order, seed=0):
        """The same kernel, launched in another thread order by default."""
        return Kernel(self.module, self.name, order, seed)

    def __repr__(self):
        return f"<emulated kernel {self.name} of {self.module.name}, order={self.order}>"

    def _scalar(self, k, code, value):
        ctype, dtype = _SCALARS[code]
        where = f"{self.name}: argument {self.names[k]} ({code})"
        if isinstance(value, np.ndarray) or not np.isscalar(value):
            raise LaunchError(f"{where} is a scalar parameter, got {type(value).__name__}")
        if code[0] in "iub" and not isinstance(value, (int, np.integer, bool, np.bool_)):
            raise LaunchError(f"{where} needs an integer, got {value!r}")
        if code[0] in "iu":
            info = np.iinfo(dtype)
            if not info.min <= int(value) <= info.max:
                raise LaunchError(f"{where}: {value} does not fit in {np.dtype(dtype).name}")
            return ctype(int(value))
        return ctype(bool(value) if code == "b1" else float(value))

    def __call__(self, grid, block, args, shared_mem=0, order=None, seed=None):
        order = self.order if order is None else order
        seed = self.seed if seed is None else seed
        if order not in ORDERS:
            raise ValueError(f"order must be one of {sorted(ORDERS)}, got {order!r}")
        grid3, block3 = _dim3(grid, "grid"), _dim3(block, "block")
        if np.prod(block3) > MAX_THREADS_PER_BLOCK or block3[2] > 64:
            raise LaunchError(f"{self.name}: block {block3} has more than {MAX_THREADS_PER_BLOCK} threads "
                              f"(or z > 64): invalid configuration on every CUDA GPU")
        if grid3[1] > 65535 or grid3[2] > 65535:
            raise LaunchError(f"{self.name}: grid {grid3}: y and z are at most 65535")
        if not 0 <= shared_mem <= DYNAMIC_SHARED_BYTES:
            raise LaunchError(f"{self.name}: shared_mem={shared_mem} bytes; the emulator (like CUDA without "
                              f"opting in) allows at most {DYNAMIC_SHARED_BYTES}")
        args = tuple(args)
        if len(args) != len(self.types):
            raise LaunchError(f"{self.name} takes {len(self.types)} arguments "
                              f"({', '.join(self.names)}), got {len(args)}")

        # Each array gets a guarded copy; the same array passed twice shares one.
        values, buffers, copies = [], {}, []
        for k, (code, value) in enumerate(zip(self.types, args)):
            if code.startswith("*"):
                values.append(self._pointer(k, code, value, buffers, copies))
            elif code in _SCALARS:
                values.append(self._scalar(k, code, value))
            else:
                raise LaunchError(f"{self.name}: parameter {self.names[k]} has a type the emulator cannot pass "
                                  f"from Python ({code})")
        argv = (ctypes.c_void_p * max(1, len(values)))(*[ctypes.addressof(v) for v in values])
        error = ctypes.create_string_buffer(4096)
        with self.module.lock:
            failed = self.module.lib.simt_launch(
                self.name.encode(), self._entry, ctypes.cast(argv, ctypes.c_void_p),
                (ctypes.c_uint * 3)(*grid3), (ctypes.c_uint * 3)(*block3),
                ORDERS[order], int(seed) & (2**64 - 1), error, len(error))
        if failed:
            raise LaunchError(f"{error.value.decode(errors='replace')} [order={order}]")
        for k, array, buffer in copies:
            n = array.nbytes
            for side, zone in (("before the start", buffer[:GUARD_BYTES]),
                               ("past the end", buffer[GUARD_BYTES + n:])):
                if (zone != 0xFF).any():
                    raise LaunchError(f"{self.name}: the kernel wrote {side} of argument {self.names[k]} "
                                      f"({array.dtype} array of shape {array.shape})")
            if not self.types[k].startswith("*c"):
                array.reshape(-1).view(np.uint8)[...] = buffer[GUARD_BYTES:GUARD_BYTES + n]

    def _pointer(self, k, code, value, buffers, copies):
        if value is None:
            return ctypes.c_void_p(0)
        if not isinstance(value, np.ndarray):
            raise LaunchError(f"{self.name}: argument {self.names[k]} is a pointer; pass a NumPy array, "
                              f"got {type(value).__name__}")
        base = code.lstrip("*c")
        if base != "v" and (base not in _SCALARS or np.dtype(_SCALARS[base][1]) != value.dtype):
            want = np.dtype(_SCALARS[base][1]).name if base in _SCALARS else base
            raise LaunchError(f"{self.name}: argument {self.names[k]} points to {want}, "
                              f"got a {value.dtype} array")
        if not value.flags.c_contiguous:
            raise LaunchError(f"{self.name}: argument {self.names[k]} must be C-contiguous "
                              f"(np.ascontiguousarray), got strides {value.strides}")
        if not code.startswith("*c") and not value.flags.writeable:
            raise LaunchError(f"{self.name}: argument {self.names[k]} is written by the kernel but the array "
                              f"is read-only")
        key = (value.__array_interface__["data"][0], value.nbytes)
        if key not in buffers:
            for (start, size) in buffers:
                if start < key[0] + key[1] and key[0] < start + size:
                    raise LaunchError(f"{self.name}: argument {self.names[k]} overlaps another argument without "
                                      f"being the same array; the emulator copies arrays, so it cannot model that")
            buffer = np.full(value.nbytes + 2 * GUARD_BYTES, 0xFF, dtype=np.uint8)
            buffer[GUARD_BYTES:GUARD_BYTES + value.nbytes] = value.reshape(-1).view(np.uint8)
            buffers[key] = buffer
            copies.append((k, value, buffer))
        return ctypes.c_void_p(buffers[key].ctypes.data + GUARD_BYTES)


_modules = {}


def load(file, kernel, order="forward", seed=0):
    """Kernel ``kernel`` of ``file``: a name in tinygen's ``kernels/`` folder, or a path."""
    path = Path(file)
    if not path.is_absolute() and not path.exists():
        from tinygen.resources import kernels_dir
        path = kernels_dir() / file
    path = path.resolve()
    if path not in _modules:
        _modules[path] = Module(path=path)
    return _modules[path].get_function(kernel, order=order, seed=seed)
