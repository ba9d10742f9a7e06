// GPU functors for the TF kernels: declared here (no CUDA headers needed), launched from
// relu_op_gpu.cu.cc, which nvcc compiles in a GPU build only.
#ifndef RELU_LAB_CSRC_RELU_GPU_H_
#define RELU_LAB_CSRC_RELU_GPU_H_

#include <cstdint>

#include "relu_functor.h"

namespace relu_lab {

// The stream TF gives the kernel (a cudaStream_t).
struct GpuDevice {
  void* stream;
};

// Enqueue the kernels on device.stream; explicitly instantiated for the four formats. Each
// returns CUDA's error text, or nullptr when the kernel was enqueued, so the op can fail
// instead of handing back an output that was never written.
template <typename F>
const char* LaunchRelu(const GpuDevice& device, const typename F::Bits* features,
                       typename F::Bits* activations, int64_t n);
template <typename F>
const char* LaunchReluGrad(const GpuDevice& device, const typename F::Bits* gradients,
                           const typename F::Bits* features, typename F::Bits* backprops,
                           int64_t n);
template <typename F>
const char* LaunchCopy(const GpuDevice& device, const typename F::Bits* input,
                       typename F::Bits* output, int64_t n);

template <typename T>
struct Relu<GpuDevice, T> {
  using F = typename FloatFormat<T>::Format;
  const char* operator()(const GpuDevice& d, const typename F::Bits* features,
                         typename F::Bits* activations, int64_t n) const {
    return LaunchRelu<F>(d, features, activations, n);
  }
};

template <typename T>
struct ReluGrad<GpuDevice, T> {
  using F = typename FloatFormat<T>::Format;
  const char* operator()(const GpuDevice& d, const typename F::Bits* gradients,
                         const typename F::Bits* features, typename F::Bits* backprops,
                         int64_t n) const {
    return LaunchReluGrad<F>(d, gradients, features, backprops, n);
  }
};

template <typename T>
struct Copy<GpuDevice, T> {
  using F = typename FloatFormat<T>::Format;
  const char* operator()(const GpuDevice& d, const typename F::Bits* input,
                         typename F::Bits* output, int64_t n) const {
    return LaunchCopy<F>(d, input, output, n);
  }
};

}  // namespace relu_lab

#endif  // RELU_LAB_CSRC_RELU_GPU_H_
