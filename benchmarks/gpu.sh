#!/usr/bin/env bash
# The accelerator table of issue 13, ready to run on a GPU machine, from the repository root:
#
#   bash benchmarks/gpu.sh                 # results in benchmarks/results/ (and $OUT if set)
#
# It runs `python -m benchmarks.device_data` (the 60,000-row epoch with dynamic
# binarization: host data path vs device-resident data, steps_per_call="epoch" and K) on the
# GPU with hand-written device-resident Flax and PyTorch loops beside xvae (--baselines):
#   1. batch 128,  precision "highest" (full float32 matmuls)  -> device-data-gpu-b128
#   2. batch 128,  precision "fast" (TF32 allowed)               -> device-data-gpu-b128-fast
#   3. batch 1024, precision "highest"                           -> device-data-gpu-b1024
#   4. batch 1024, precision "fast"                              -> device-data-gpu-b1024-fast
# Each JSON records the GPU, versions and the load; each .md is the table docs/performance.md
# quotes. Targets (issue 13): >= 90% of the epoch inside compiled calls on the device path,
# xvae within 5% of the best hand-written loop.
#
# No network is needed. xvae's backends are found through its package metadata (entry points
# "xvae.backends"), so the script uses, in this order: an installed xvae; a hatchling wheel
# carried in .whl/ (pip install --no-index --no-build-isolation .); else PYTHONPATH=. plus a
# minimal dist-info written to a temporary folder that declares the three entry points (what
# an install would write; nothing is installed). TensorFlow is optional: BACKENDS defaults to
# those of jax, torch, tf that import.
#
# Environment: XVAE_DATA_DIR (the MNIST test set t10k-images-idx3-ubyte.gz; without it the
# benchmark uses synthetic intensities of the same shape and says so in the JSON), BACKENDS,
# ROUNDS (default 5), OUT (a folder the results are also copied to).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}

if ! "$PY" -c "import importlib.metadata as m; assert any(e.name == 'jax' for e in m.entry_points(group='xvae.backends'))" 2>/dev/null; then
  if ls .whl/hatchling-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --find-links .whl --target /tmp/xvae-build .whl/*.whl
    PYTHONPATH=/tmp/xvae-build "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/xvae-site .
    export PYTHONPATH="/tmp/xvae-site${PYTHONPATH:+:$PYTHONPATH}"
  else
    meta=$(mktemp -d)/xvae-0+local.dist-info
    mkdir -p "$meta"
    printf 'Metadata-Version: 2.1\nName: xvae\nVersion: 0+local\n' >"$meta/METADATA"
    printf '[xvae.backends]\njax = xvae_jax.plugin\ntf = xvae_tf.plugin\ntorch = xvae_torch.plugin\n' >"$meta/entry_points.txt"
    export PYTHONPATH="$PWD:$(dirname "$meta")${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi

if [ -z "${BACKENDS:-}" ]; then
  BACKENDS=$("$PY" - <<'EOF'
import importlib.util
print(",".join(b for b, m in (("jax", "jax"), ("torch", "torch"), ("tf", "tensorflow")) if importlib.util.find_spec(m)))
EOF
)
fi
ROUNDS=${ROUNDS:-5}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
echo "backends: $BACKENDS"

run() {  # batch precision name k
  "$PY" -m benchmarks.device_data --device gpu --backends "$BACKENDS" --baselines --rounds "$ROUNDS" \
    --batch "$1" --precision "$2" --k "$4" --name "$3"
}
run 128 highest device-data-gpu-b128 67          # 469 steps an epoch = 7 calls of 67
run 128 fast device-data-gpu-b128-fast 67
run 1024 highest device-data-gpu-b1024 59        # 59 steps an epoch: K = the epoch
run 1024 fast device-data-gpu-b1024-fast 59

if [ -n "${OUT:-}" ]; then
  cp benchmarks/results/device-data-gpu-*.json benchmarks/results/device-data-gpu-*.md "$OUT"/
fi
