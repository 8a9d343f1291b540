"""Every kernel file compiles with nvcc for Ampere (sm_80) and Hopper (sm_90), warning-free and spill-free.

Runs where ``nvcc`` is on PATH (no GPU needed: ``-cubin`` only compiles). ptxas
reports, per kernel, the bytes of registers spilled to local memory; a spill is
a slow load/store in the innermost loop, so every kernel must report

    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

(the stack frame is not checked). ``--Werror all-warnings`` turns every
front-end and ptxas warning into an error.
"""
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import emulator
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


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", SOURCES)
def test_compiles_without_warnings_or_spills(ptxas_reports, name, arch):
    code, report = ptxas_reports[name, arch]
    assert code == 0, f"nvcc -arch={arch} {name} failed:\n{report}"
    kernels = emulator.kernels_in((kernels_dir() / name).read_text())
    found = spills(report)
    assert set(kernels) <= set(found), f"ptxas did not report on {set(kernels) - set(found)}:\n{report}"
    for kernel in kernels:
        assert found[kernel] == (0, 0), f"{kernel} ({arch}) spills registers: stores, loads = {found[kernel]}"


def test_the_report_parser_sees_spills():
    report = ("ptxas info    : Function properties for col2im\n"
              "    8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads\n"
              "ptxas info    : Function properties for im2col\n"
              "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n")
    assert spills(report) == {"col2im": (12, 4), "im2col": (0, 0)}
