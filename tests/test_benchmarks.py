"""The benchmark scripts that need no PyTorch still run (a broken benchmark is found here, not
on the day a GPU machine is lent): benchmarks/gpu.py's model table on the CPU, and its one line
and exit status 2 for --device cuda without CuPy or a GPU."""
import os
import subprocess
import sys

import pytest

import tinygen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU = os.path.join(ROOT, "benchmarks", "gpu.py")


def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, GPU, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_gpu_benchmark_writes_its_model_table_on_the_cpu(tmp_path):
    p = _run("--device", "cpu", "--models", "bernoulli,dcgan", "--steps", "1", "--out", str(tmp_path / "gpu.md"))
    assert p.returncode == 0, p.stderr
    table = (tmp_path / "gpu.md").read_text()
    assert "| bernoulli | 64 |" in table and "| dcgan | 64 |" in table


@pytest.mark.skipif(tinygen.cuda_available(), reason="a GPU is here: the real benchmark runs instead")
def test_the_gpu_benchmark_without_a_gpu_says_so_in_one_line():
    p = _run("--device", "cuda", "--steps", "1")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_the_headers_name_the_blas_kernels_and_a_forced_choice():
    """Every benchmark header says which kernels NumPy's BLAS runs, and says so when the
    environment forced them (OPENBLAS_CORETYPE: half the GEMM rate on an AVX-512 CPU)."""
    code = "import sys; sys.path.insert(0, 'benchmarks'); import numpy; from _timing import blas_kernels; " \
           "print(blas_kernels())"
    for forced in ("Haswell", None):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        if forced:
            env["OPENBLAS_CORETYPE"] = forced
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60).stdout.strip()
        assert out and (f"OPENBLAS_CORETYPE={forced} set" in out) == bool(forced), out
        if forced and out.startswith("openblas"):
            assert forced in out.split("(")[0]                  # the kernels OpenBLAS reports it runs
