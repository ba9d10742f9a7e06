#!/usr/bin/env bash
# Build and run the standalone CUDA check (csrc/gpu_check.cu): bitwise results against the
# host reference, then GB/s of the ReLU kernel vs cudaMemcpy. Exit status is the harness's
# (0 PASS, 1 mismatches, 2 CUDA error). Override the target with ARCH=sm_80 etc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nvcc --version | tail -n 1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
nvcc -O3 -arch="${ARCH:-sm_90}" "$here/gpu_check.cu" -o "$out/gpu_check"
"$out/gpu_check"
