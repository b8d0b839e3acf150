#!/usr/bin/env bash
# The one prepared GPU check, for a session lent a GPU machine (see /work/.library/device):
#
#   bash bench/gpu_check.sh tests   # the test suite on CUDA                       (~3-4 min)
#   bash bench/gpu_check.sh speed   # sampling, eager vs graphs; throughput and compile
#                                   # time, small at batch 32 (ours and diffusers),
#                                   # tiny at batch 128                            (~6 min)
#   bash bench/gpu_check.sh budget  # 2-minute runs, eager vs auto: images, PSNR    (~5 min)
#
# Estimates (each compiling run ~1 min in a fresh process); a session's 15 device minutes,
# start included, hold about two of the three: speed and budget first.
# Each stage fits one 10-minute command; logs go to $OUT (or bench_output/). The GPU image has
# torch, pytest, matplotlib, pillow, tqdm and scikit-learn but not diffusers, jupytext,
# nbclient or ipywidgets: carry them as wheels in .whl/ (the device README says how: for the
# bench, diffusers, importlib_metadata and a huggingface_hub new enough for it), and name
# .whl and nothing else in carry; this script installs whatever is in .whl/ first.
set -uo pipefail
out="${OUT:-bench_output}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
case "${1:-}" in
tests)
    # pytest-xdist is on the GPU image; a test file's tests stay together (notebooks in order).
    # Modules whose packages were not carried (jupytext, nbclient, ipywidgets) fail to
    # collect and are listed; the rest run.
    python3 -m pytest -q -p no:cacheprovider -n 8 --dist loadfile \
        --continue-on-collection-errors 2>&1 | tee "$out/tests.log"
    ;;
speed)
    python3 bench/gpu_speed.py sampling 2>&1 | tee "$out/speed.log"
    python3 bench/gpu_speed.py throughput --presets small --batches 32 --nets ours diffusers \
        2>&1 | tee -a "$out/speed.log"
    python3 bench/gpu_speed.py throughput --presets tiny --batches 128 --nets ours \
        2>&1 | tee -a "$out/speed.log"
    ;;
budget)
    python3 bench/gpu_speed.py budget --nets ours --minutes 2 2>&1 | tee "$out/budget.log"
    ;;
*)
    echo "usage: bash bench/gpu_check.sh tests|speed|budget" >&2
    exit 2
    ;;
esac
