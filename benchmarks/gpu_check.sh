#!/usr/bin/env bash
# Issue 16's GPU checks in one go, on a CUDA machine without network access: about 8 minutes on an H200.
#
#   here, once:  benchmarks/gpu_check.sh prepare    # Fashion-MNIST into data/, pytest (pure Python) into .gpu-deps/
#   there:       OUT=<folder> benchmarks/gpu_check.sh
#                (the device `run` tool: carry ["data/FashionMNIST", ".gpu-deps"], timeout_s 600)
#
# Writes to $OUT: env.txt (versions, nvidia-smi), test_cuda.txt (pytest -rs tests/test_cuda.py: CPU/GPU equality,
# determinism, the fast path's graphs against eager steps, stacked BatchNorm, compare with 2 workers on one GPU),
# gpu_results.json and benchmarks.md (docs/benchmarks.md with its GPU section filled in: copy both back into the
# repository), gpu.txt (the benchmark's log).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = prepare ]; then
  mkdir -p data/FashionMNIST/raw .gpu-deps
  cp /usr/share/datasets/fashion-mnist/*.gz data/FashionMNIST/raw/
  site=$($PY -c "import os, pytest; print(os.path.dirname(os.path.dirname(pytest.__file__)))")
  for package in pytest _pytest pluggy iniconfig packaging pygments py.py; do
    [ -e "$site/$package" ] && cp -r "$site/$package" .gpu-deps/
  done
  du -sh data/FashionMNIST .gpu-deps
  exit 0
fi
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/.gpu-deps" MPLBACKEND=Agg
{ $PY -c "import sys, torch; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
  nvidia-smi; } > "$OUT/env.txt" 2>&1
# 1. equality and determinism tests (about 2 minutes)
timeout 240 $PY -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py > "$OUT/test_cuda.txt" 2>&1
echo "tests: exit $?" >> "$OUT/test_cuda.txt"
# 2. the benchmark (about 5 minutes): matmul rates, steps/s at K = 1, 8, 16, 32 on both paths, the cost of
#    deterministic mode, step profiles of mobilenet_v2 and resnet20, the 30-seed mlp and cnn studies on the fast path
cp docs/benchmarks.md "$OUT/benchmarks.md"
timeout 330 $PY benchmarks/gpu.py --study-paths fast --study-timeout mlp=90,cnn=150 \
  --out "$OUT/gpu_results.json" --doc "$OUT/benchmarks.md" > "$OUT/gpu.txt" 2>&1
echo "benchmark: exit $?" >> "$OUT/gpu.txt"
tail -n 5 "$OUT/test_cuda.txt" "$OUT/gpu.txt"
