// GPU functors of the TF kernels (compiled by nvcc in a GPU build only): they enqueue
// relu_kernel.cu.h's kernels on the stream TF hands the op. No TensorFlow headers needed.
#if GOOGLE_CUDA

#include <cuda_runtime.h>

#include <cstdio>

#include "relu_gpu.h"
#include "relu_kernel.cu.h"

namespace relu_lab {

namespace {
void Report(const char* what, cudaError_t error) {
  // TF's kernel has no status to return from the functor; a launch error shows up on the next
  // synchronising call, and this line says which op caused it.
  if (error != cudaSuccess) std::fprintf(stderr, "relu_lab %s: %s\n", what, cudaGetErrorString(error));
}
}  // namespace

template <typename F>
void LaunchRelu(const GpuDevice& device, const typename F::Bits* features,
                typename F::Bits* activations, int64_t n) {
  Report("CustomRelu", gpu::LaunchReluKernel<F>(features, activations, n,
                                                static_cast<cudaStream_t>(device.stream)));
}

template <typename F>
void LaunchReluGrad(const GpuDevice& device, const typename F::Bits* gradients,
                    const typename F::Bits* features, typename F::Bits* backprops, int64_t n) {
  Report("CustomReluGrad", gpu::LaunchReluGradKernel<F>(gradients, features, backprops, n,
                                                        static_cast<cudaStream_t>(device.stream)));
}

template <typename F>
void LaunchCopy(const GpuDevice& device, const typename F::Bits* input, typename F::Bits* output,
                int64_t n) {
  Report("BandwidthProbe",
         gpu::LaunchCopyKernel<F>(input, output, n, static_cast<cudaStream_t>(device.stream)));
}

#define RELU_LAB_INSTANTIATE(F)                                                              \
  template void LaunchRelu<F>(const GpuDevice&, const F::Bits*, F::Bits*, int64_t);          \
  template void LaunchReluGrad<F>(const GpuDevice&, const F::Bits*, const F::Bits*, F::Bits*, \
                                  int64_t);                                                  \
  template void LaunchCopy<F>(const GpuDevice&, const F::Bits*, F::Bits*, int64_t);

RELU_LAB_INSTANTIATE(Binary16Format)
RELU_LAB_INSTANTIATE(BFloat16Format)
RELU_LAB_INSTANTIATE(Binary32Format)
RELU_LAB_INSTANTIATE(Binary64Format)

}  // namespace relu_lab

#endif  // GOOGLE_CUDA
