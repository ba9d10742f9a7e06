// GPU functors of the TF kernels (compiled by nvcc in a GPU build only): they enqueue
// relu_kernel.cu.h's kernels on the stream TF hands the op. No TensorFlow headers needed.
#if GOOGLE_CUDA

#include <cuda_runtime.h>

#include "relu_gpu.h"
#include "relu_kernel.cu.h"

namespace relu_lab {

namespace {
const char* ErrorText(cudaError_t error) {
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}
}  // namespace

template <typename F>
const char* LaunchRelu(const GpuDevice& device, const typename F::Bits* features,
                       typename F::Bits* activations, int64_t n) {
  return ErrorText(gpu::LaunchReluKernel<F>(features, activations, n,
                                            static_cast<cudaStream_t>(device.stream)));
}

template <typename F>
const char* LaunchReluGrad(const GpuDevice& device, const typename F::Bits* gradients,
                           const typename F::Bits* features, typename F::Bits* backprops,
                           int64_t n) {
  return ErrorText(gpu::LaunchReluGradKernel<F>(gradients, features, backprops, n,
                                                static_cast<cudaStream_t>(device.stream)));
}

template <typename F>
const char* LaunchCopy(const GpuDevice& device, const typename F::Bits* input,
                       typename F::Bits* output, int64_t n) {
  return ErrorText(
      gpu::LaunchCopyKernel<F>(input, output, n, static_cast<cudaStream_t>(device.stream)));
}

#define RELU_LAB_INSTANTIATE(F)                                                                 \
  template const char* LaunchRelu<F>(const GpuDevice&, const F::Bits*, F::Bits*, int64_t);     \
  template const char* LaunchReluGrad<F>(const GpuDevice&, const F::Bits*, const F::Bits*,      \
                                         F::Bits*, int64_t);                                    \
  template const char* LaunchCopy<F>(const GpuDevice&, const F::Bits*, F::Bits*, int64_t);

RELU_LAB_INSTANTIATE(Binary16Format)
RELU_LAB_INSTANTIATE(BFloat16Format)
RELU_LAB_INSTANTIATE(Binary32Format)
RELU_LAB_INSTANTIATE(Binary64Format)

}  // namespace relu_lab

#endif  // GOOGLE_CUDA
