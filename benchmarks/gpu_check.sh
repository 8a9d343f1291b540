#!/usr/bin/env bash
# The GPU check of tinygen, in one short run on a machine with an NVIDIA GPU:
#
#   1. CuPy: imported as it is, or else (only where a GPU is seen) the wheel for this machine's CUDA major version
#      (cupy-cuda11x, cupy-cuda12x or cupy-cuda13x) installed into the current Python;
#      from ./.whl (wheels carried along, no index) when that folder exists, else from PyPI.
#   2. The tests that need a GPU (`pytest -m gpu tests`), then nvcc's compile checks
#      (tests/cuda/test_nvcc.py).
#   3. benchmarks/models.py --device cuda --no-check --markdown > $OUT/models_gpu.md: every model's
#      training step against the same network in PyTorch on the same GPU (where PyTorch sees it;
#      the float64 check of the twins is the CPU's, skipped here).
#   4. benchmarks/gpu.py --device cuda --out $OUT/gpu.md: kernels against cuDNN / CuPy,
#      every model's training step; its tables are printed and written as Markdown.
#
#     bash benchmarks/gpu_check.sh            # OUT=. by default; PYTHON=python3 (else python)
#
# Each step has a time limit (INSTALL_TIMEOUT, TEST_TIMEOUT, MODELS_TIMEOUT, BENCH_TIMEOUT seconds),
# chosen so the whole check fits in 10 minutes on an H200 (with CuPy there, as on this project's). Every step runs even when one before it
# failed (a failing test should not cost the figures); the exit status is the first failure's,
# 2 when there is no CuPy or no GPU at all.
set -u -o pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-$PWD}"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
INSTALL_TIMEOUT="${INSTALL_TIMEOUT:-240}"
TEST_TIMEOUT="${TEST_TIMEOUT:-200}"
MODELS_TIMEOUT="${MODELS_TIMEOUT:-150}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-240}"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
mkdir -p "$OUT"
status=0

say() { printf '\n== %s\n' "$*"; }

cuda_major() {
    # The newest CUDA the driver runs (nvidia-smi's header), else the toolkit's (nvcc).
    local v
    v="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -n 1)"
    [ -n "$v" ] || v="$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -n 1)"
    echo "$v"
}

install_cupy() {
    local major wheel
    major="$(cuda_major)"
    case "$major" in
        11|12|13) wheel="cupy-cuda${major}x" ;;
        *) echo "gpu_check: no CuPy, and no CUDA version found (nvidia-smi, nvcc) to pick its wheel"; return 2 ;;
    esac
    if [ -d .whl ]; then
        say "installing $wheel from ./.whl (CUDA $major)"
        timeout "$INSTALL_TIMEOUT" "$PYTHON" -m pip install -q --no-index --find-links .whl "$wheel"
    else
        say "installing $wheel from the package index (CUDA $major)"
        timeout "$INSTALL_TIMEOUT" "$PYTHON" -m pip install -q "$wheel"
    fi || { echo "gpu_check: CuPy is not installed and $wheel could not be installed"; return 2; }
}

say "python: $PYTHON"
# No GPU, no install: a machine with CUDA's compiler but no GPU (a developer's) is left as it is.
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU' && ! ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi lists none, no /dev/nvidia*): nothing to check"
    exit 2
fi
if ! "$PYTHON" -c 'import cupy' 2>/dev/null; then
    install_cupy || exit 2
fi
if ! "$PYTHON" -c 'import cupy, sys; n = cupy.cuda.runtime.getDeviceCount(); print(f"CuPy {cupy.__version__}, {n} GPU(s)"); sys.exit(n == 0)'; then
    echo "gpu_check: CuPy is installed but sees no GPU"
    exit 2
fi

# The GPU tests (marked gpu; each also skips itself without a GPU), then nvcc's compile checks.
for tests in "-m gpu tests" "tests/cuda/test_nvcc.py"; do
    say "tests: pytest -q $tests"
    # shellcheck disable=SC2086
    timeout "$TEST_TIMEOUT" "$PYTHON" -m pytest -q -p no:cacheprovider $tests
    rc=$?
    [ "$rc" -eq 124 ] && echo "gpu_check: the tests ran past ${TEST_TIMEOUT} s"
    [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
done

if "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    say "benchmark: benchmarks/models.py --device cuda --no-check --rounds 3 --markdown > $OUT/models_gpu.md"
    timeout "$MODELS_TIMEOUT" "$PYTHON" benchmarks/models.py --device cuda --no-check --rounds 3 --markdown \
        | tee "$OUT/models_gpu.md"
    rc=$?
    [ "$rc" -eq 124 ] && echo "gpu_check: the models' table ran past ${MODELS_TIMEOUT} s"
    [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
else
    say "benchmark: no PyTorch with CUDA here, so no twins on the GPU (benchmarks/models.py --device cuda)"
fi

say "benchmark: benchmarks/gpu.py --device cuda --out $OUT/gpu.md"
timeout "$BENCH_TIMEOUT" "$PYTHON" benchmarks/gpu.py --device cuda --out "$OUT/gpu.md"
rc=$?
[ "$rc" -eq 124 ] && echo "gpu_check: the benchmark ran past ${BENCH_TIMEOUT} s"
[ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc

say "gpu_check: exit status $status (figures in $OUT/gpu.md)"
exit "$status"
