// CUDA kernels for ReLU, its gradient and the bandwidth copy; no TensorFlow needed.
//
// The math is relu_functor.h's ReluBits / ReluGradBits, so GPU and CPU give the same bits
// element by element (lanes included). Each thread moves 16 bytes per load and store (float4
// for float, 8 x half / bfloat16, 2 x double) over a grid-stride loop; the body of the tensor
// [0, TailStart(n)) is a whole number of 16-byte vectors, and the tail (< 8 elements) is done
// element by element. NaN propagates because the rules act on bits, never on float compares.
#ifndef RELU_LAB_CSRC_RELU_KERNEL_CU_H_
#define RELU_LAB_CSRC_RELU_KERNEL_CU_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "relu_functor.h"

namespace relu_lab {
namespace gpu {

constexpr int kThreadsPerBlock = 256;
constexpr int64_t kMaxBlocks = 1 << 16;

// 16 bytes of one format's bits, viewed as an array.
template <typename F>
struct alignas(16) Vec {
  static constexpr int kSize = 16 / sizeof(typename F::Bits);
  // The body [0, TailStart(n)) must be whole vectors, or the kernels would skip elements.
  static_assert(F::kPacket % kSize == 0, "a TF packet is a whole number of 16-byte vectors");
  typename F::Bits v[kSize];
};

template <typename F>
__device__ __forceinline__ Vec<F> LoadVec(const typename F::Bits* p, int64_t i) {
  const uint4 raw = reinterpret_cast<const uint4*>(p)[i];
  Vec<F> out;
  static_assert(sizeof(out) == sizeof(raw), "16-byte vectors");
  memcpy(&out, &raw, sizeof(raw));
  return out;
}

template <typename F>
__device__ __forceinline__ void StoreVec(typename F::Bits* p, int64_t i, const Vec<F>& x) {
  uint4 raw;
  memcpy(&raw, &x, sizeof(raw));
  reinterpret_cast<uint4*>(p)[i] = raw;
}

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t GridThreads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// features, activations: n elements (may be the same buffer), 16-byte aligned.
template <typename F>
__global__ void ReluKernel(const typename F::Bits* features, typename F::Bits* activations,
                           int64_t n) {
  const int64_t tail = TailStart<F>(n);
  const int64_t vectors = tail / Vec<F>::kSize;
  for (int64_t i = GlobalThread(); i < vectors; i += GridThreads()) {
    Vec<F> x = LoadVec<F>(features, i);
#pragma unroll
    for (int k = 0; k < Vec<F>::kSize; ++k) x.v[k] = ReluBits<F>(x.v[k], Lane::kBody);
    StoreVec<F>(activations, i, x);
  }
  for (int64_t i = tail + GlobalThread(); i < n; i += GridThreads()) {
    activations[i] = ReluBits<F>(features[i], LaneOf<F>(i, n));
  }
}

// gradients, features, backprops: n elements each, 16-byte aligned.
template <typename F>
__global__ void ReluGradKernel(const typename F::Bits* gradients, const typename F::Bits* features,
                               typename F::Bits* backprops, int64_t n) {
  const int64_t tail = TailStart<F>(n);
  const int64_t vectors = tail / Vec<F>::kSize;
  for (int64_t i = GlobalThread(); i < vectors; i += GridThreads()) {
    Vec<F> g = LoadVec<F>(gradients, i);
    const Vec<F> f = LoadVec<F>(features, i);
#pragma unroll
    for (int k = 0; k < Vec<F>::kSize; ++k) g.v[k] = ReluGradBits<F>(g.v[k], f.v[k], Lane::kBody);
    StoreVec<F>(backprops, i, g);
  }
  for (int64_t i = tail + GlobalThread(); i < n; i += GridThreads()) {
    backprops[i] = ReluGradBits<F>(gradients[i], features[i], LaneOf<F>(i, n));
  }
}

// The same loop with no math: the bandwidth ReluKernel could reach.
template <typename F>
__global__ void CopyKernel(const typename F::Bits* input, typename F::Bits* output, int64_t n) {
  const int64_t tail = TailStart<F>(n);
  const int64_t vectors = tail / Vec<F>::kSize;
  for (int64_t i = GlobalThread(); i < vectors; i += GridThreads()) {
    StoreVec<F>(output, i, LoadVec<F>(input, i));
  }
  for (int64_t i = tail + GlobalThread(); i < n; i += GridThreads()) output[i] = input[i];
}

inline bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Scalar fallback for buffers that are not 16-byte aligned (TF's never are misaligned).
template <typename F>
__global__ void ReluScalarKernel(const typename F::Bits* features, typename F::Bits* activations,
                                 int64_t n) {
  for (int64_t i = GlobalThread(); i < n; i += GridThreads()) {
    activations[i] = ReluBits<F>(features[i], LaneOf<F>(i, n));
  }
}

inline unsigned BlocksFor(int64_t work_items) {
  int64_t blocks = (work_items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// Enqueue on `stream`; returns the launch error (cudaSuccess when none).
template <typename F>
cudaError_t LaunchReluKernel(const typename F::Bits* features, typename F::Bits* activations,
                             int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (Aligned16(features) && Aligned16(activations)) {
    ReluKernel<F><<<BlocksFor(n / Vec<F>::kSize + 8), kThreadsPerBlock, 0, stream>>>(
        features, activations, n);
  } else {
    ReluScalarKernel<F><<<BlocksFor(n), kThreadsPerBlock, 0, stream>>>(features, activations, n);
  }
  return cudaGetLastError();
}

template <typename F>
__global__ void ReluGradScalarKernel(const typename F::Bits* gradients,
                                     const typename F::Bits* features,
                                     typename F::Bits* backprops, int64_t n) {
  for (int64_t i = GlobalThread(); i < n; i += GridThreads()) {
    backprops[i] = ReluGradBits<F>(gradients[i], features[i], LaneOf<F>(i, n));
  }
}

template <typename F>
cudaError_t LaunchReluGradKernel(const typename F::Bits* gradients,
                                 const typename F::Bits* features, typename F::Bits* backprops,
                                 int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (Aligned16(gradients) && Aligned16(features) && Aligned16(backprops)) {
    ReluGradKernel<F><<<BlocksFor(n / Vec<F>::kSize + 8), kThreadsPerBlock, 0, stream>>>(
        gradients, features, backprops, n);
  } else {
    ReluGradScalarKernel<F><<<BlocksFor(n), kThreadsPerBlock, 0, stream>>>(gradients, features,
                                                                          backprops, n);
  }
  return cudaGetLastError();
}

template <typename F>
cudaError_t LaunchCopyKernel(const typename F::Bits* input, typename F::Bits* output, int64_t n,
                             cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (Aligned16(input) && Aligned16(output)) {
    CopyKernel<F><<<BlocksFor(n / Vec<F>::kSize + 8), kThreadsPerBlock, 0, stream>>>(input,
                                                                                   output, n);
    return cudaGetLastError();
  }
  return cudaMemcpyAsync(output, input, n * sizeof(typename F::Bits), cudaMemcpyDeviceToDevice,
                         stream);
}

}  // namespace gpu
}  // namespace relu_lab

#endif  // RELU_LAB_CSRC_RELU_KERNEL_CU_H_
