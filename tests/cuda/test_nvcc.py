"""Every kernel file compiles with nvcc for Ampere (sm_80) and Hopper (sm_90), warning-free and spill-free.

Runs where ``nvcc`` is on PATH (no GPU needed: ``-cubin`` only compiles). ptxas
reports, per kernel, the bytes of registers spilled to local memory; a spill is
a slow load/store in the innermost loop, so every kernel, in its float (_f32)
and its double (_f64) instantiation, must report

    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

(the stack frame is not checked). ``--Werror all-warnings`` turns every
front-end and ptxas warning into an error.

The text tinygen.cuda hands to NVRTC (``kernel_source``: headers pasted in) is
compiled on its own too, to PTX, where the float instantiations must hold no
double-precision instruction: a float kernel that calls exp instead of expf, or
mixes in a double constant, computes in double and rounds back.
"""
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import emulator
from tinygen import resources
from tinygen.resources import kernels_dir

NVCC = shutil.which("nvcc")
ARCHS = ["sm_80", "sm_90"]
SOURCES = sorted(p.name for p in kernels_dir().glob("*.cu"))

pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")


def compile_cubin(name, arch, out_dir):
    command = [NVCC, "-cubin", f"-arch={arch}", "-std=c++17", "-Xptxas", "-v", "--Werror", "all-warnings",
               "-o", str(out_dir / f"{name}.{arch}.cubin"), str(kernels_dir() / name)]
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def ptxas_reports(tmp_path_factory):
    """{(file, arch): (return code, nvcc output)}, compiled in parallel once for the module."""
    out_dir = tmp_path_factory.mktemp("cubin")
    jobs = [(name, arch) for name in SOURCES for arch in ARCHS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda job: compile_cubin(*job, out_dir), jobs)
        return dict(zip(jobs, results))


def spills(report):
    """{kernel: (spill store bytes, spill load bytes)} from ptxas -v output."""
    found = {}
    for match in re.finditer(r"Function properties for (\w+)\s*\n\s*(\d+) bytes stack frame, "
                             r"(\d+) bytes spill stores, (\d+) bytes spill loads", report):
        found[match.group(1)] = (int(match.group(3)), int(match.group(4)))
    return found


def test_there_are_kernel_sources():
    assert {"conv2d.cu", "lstm.cu", "pixelrnn.cu"} <= set(SOURCES)


def instantiations(name):
    return {resources.kernel_name(kernel, dtype) for kernel in resources.KERNELS[name] for dtype in resources.DTYPE_SUFFIXES}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", SOURCES)
def test_compiles_without_warnings_or_spills(ptxas_reports, name, arch):
    code, report = ptxas_reports[name, arch]
    assert code == 0, f"nvcc -arch={arch} {name} failed:\n{report}"
    kernels = emulator.kernels_in((kernels_dir() / name).read_text())
    found = spills(report)
    assert instantiations(name) <= set(kernels)
    assert set(kernels) <= set(found), f"ptxas did not report on {set(kernels) - set(found)}:\n{report}"
    for kernel in kernels:
        assert found[kernel] == (0, 0), f"{kernel} ({arch}) spills registers: stores, loads = {found[kernel]}"


def compile_nvrtc_text(name, out_dir):
    """(return code, nvcc output, PTX) of resources.kernel_source(name), alone in ``out_dir`` as NVRTC sees it."""
    source = out_dir / name       # no headers next to it: the text must stand alone
    source.write_text(resources.kernel_source(name))
    ptx = out_dir / f"{name}.ptx"
    command = [NVCC, "-ptx", "-arch=sm_80", "-std=c++17", "--Werror", "all-warnings", "-o", str(ptx), str(source)]
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr, ptx.read_text() if ptx.exists() else ""


@pytest.fixture(scope="module")
def nvrtc_ptx(tmp_path_factory):
    """{file: (return code, nvcc output, PTX)}, compiled in parallel once for the module."""
    out_dir = tmp_path_factory.mktemp("nvrtc")
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(SOURCES, pool.map(lambda name: compile_nvrtc_text(name, out_dir), SOURCES)))


def ptx_entries(ptx):
    """{entry point: its PTX body}."""
    return {m.group(1): m.group(2) for m in re.finditer(r"\.entry\s+(\w+)\s*\((.*?)\n\}", ptx, re.S)}


@pytest.mark.parametrize("name", SOURCES)
def test_float_kernels_compute_in_float_and_double_kernels_in_double(nvrtc_ptx, name):
    code, report, ptx = nvrtc_ptx[name]
    assert code == 0, f"the NVRTC text of {name} does not compile on its own:\n{report}"
    entries = ptx_entries(ptx)
    assert instantiations(name) <= set(entries), sorted(entries)
    for kernel in resources.KERNELS[name]:
        f32, f64 = entries[resources.kernel_name(kernel, "float32")], entries[resources.kernel_name(kernel, "float64")]
        doubles = sorted({line.split()[0] for line in f32.splitlines() if ".f64" in line})
        assert not doubles, f"{kernel}_f32 has double-precision instructions: {doubles}"
        assert re.search(r"\bld\.global(\.nc)?\.f64\b", f64), f"{kernel}_f64 loads no doubles"
        assert not re.search(r"\b(ld|st)\.global(\.nc)?\.f32\b", f64), f"{kernel}_f64 moves floats"


def test_the_report_parser_sees_spills():
    report = ("ptxas info    : Function properties for col2im\n"
              "    8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads\n"
              "ptxas info    : Function properties for im2col\n"
              "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n")
    assert spills(report) == {"col2im": (12, 4), "im2col": (0, 0)}
