// CPU kernels of CustomRelu, CustomReluGrad and BandwidthProbe, and their GPU registration in
// a CUDA build. The op classes only fetch tensors, allocate (or forward) and call a functor.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU  // before any Eigen header: gives OpKernelContext::eigen_device<GpuDevice>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>

#include "relu_functor.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

#if GOOGLE_CUDA
#include "relu_gpu.h"
#endif

namespace relu_lab {

template <>
struct FloatFormat<Eigen::half> : Binary16Format {};
template <>
struct FloatFormat<Eigen::bfloat16> : BFloat16Format {};

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

// Below this many input bytes (256K floats) one thread is faster: waking a pool thread costs
// more than it saves (profiling.bench.op, 2 cores: 1e5 floats single-threaded 2.6x tf.nn.relu;
// 1e6 split 1.24x vs 0.99x single). RELU_LAB_PARALLEL_MIN_BYTES overrides it for tuning.
int64_t ParallelMinBytes() {
  static const int64_t value = [] {
    const char* env = std::getenv("RELU_LAB_PARALLEL_MIN_BYTES");
    return env != nullptr ? std::max<int64_t>(std::atoll(env), 1) : int64_t{1} << 20;
  }();
  return value;
}

// Outputs from this size on bypass the cache (see CpuDevice::stream_min_bytes); below it the
// output likely stays in L2/L3 for the next op. RELU_LAB_STREAM_MIN_BYTES overrides it.
int64_t StreamMinBytes() {
  static const int64_t value = [] {
    const char* env = std::getenv("RELU_LAB_STREAM_MIN_BYTES");
    return env != nullptr ? std::max<int64_t>(std::atoll(env), 1) : int64_t{16} << 20;
  }();
  return value;
}

// Blocks of this many input bytes are handed out one at a time, so a pool thread that starts
// late (the machine is shared) only shrinks its share instead of stalling the caller.
constexpr int64_t kBlockBytes = int64_t{256} << 10;

// Work shared between the caller and the pool threads it woke. Heap-allocated and reference
// counted: a helper that wakes after all blocks are claimed touches only this, never `work`.
struct SharedBlocks {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> finished{0};
  int64_t blocks = 0;
  int64_t block = 0;
  int64_t n = 0;
  const std::function<void(int64_t, int64_t)>* work = nullptr;

  // Claims and runs blocks until none are left.
  void Drain() {
    for (int64_t b = next.fetch_add(1, std::memory_order_relaxed); b < blocks;
         b = next.fetch_add(1, std::memory_order_relaxed)) {
      (*work)(b * block, std::min(n, (b + 1) * block));
      finished.fetch_add(1, std::memory_order_release);
    }
  }
};

// The split shared by every kernel here (CustomRelu, its gradient and BandwidthProbe): small
// inputs run on the caller's thread; larger ones are cut into cache-aligned blocks that the
// caller and up to NumThreads() - 1 pool threads claim dynamically.
CpuDevice MakeCpuDevice(OpKernelContext* context) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads()->workers;
  CpuDevice device;
  device.stream_min_bytes = StreamMinBytes();
  device.parallel_for = [workers](int64_t n, int64_t bytes_per_element,
                                  const std::function<void(int64_t, int64_t)>& work) {
    const int64_t bytes = n * bytes_per_element;
    const int64_t threads = std::max(1, workers->NumThreads());
    if (threads <= 1 || bytes < ParallelMinBytes()) {
      work(0, n);
      return;
    }
    auto shared = std::make_shared<SharedBlocks>();
    // A multiple of 4096 elements is whole pages whatever the element size (bytes_per_element
    // is a cost weight, 1.5x the element size for the gradient): no cache line is shared.
    constexpr int64_t kAlign = 4096;
    shared->block = std::max<int64_t>(kAlign, kBlockBytes / bytes_per_element / kAlign * kAlign);
    shared->blocks = (n + shared->block - 1) / shared->block;
    shared->n = n;
    shared->work = &work;
    const int64_t helpers = std::min(threads, shared->blocks) - 1;
    for (int64_t h = 0; h < helpers; ++h) workers->Schedule([shared] { shared->Drain(); });
    shared->Drain();
    // Every block is claimed; wait only for the ones still running on helpers.
    while (shared->finished.load(std::memory_order_acquire) < shared->blocks) {
      std::this_thread::yield();
    }
  };
  return device;
}

template <typename Device>
Device DeviceFor(OpKernelContext* context);

template <>
CpuDevice DeviceFor<CpuDevice>(OpKernelContext* context) {
  return MakeCpuDevice(context);
}

#if GOOGLE_CUDA
template <>
GpuDevice DeviceFor<GpuDevice>(OpKernelContext* context) {
  return GpuDevice{context->eigen_device<Eigen::GpuDevice>().stream()};
}
#endif

template <typename T>
using BitsOf = typename FloatFormat<T>::Bits;

template <typename T>
const BitsOf<T>* BitsIn(const Tensor& t) {
  return reinterpret_cast<const BitsOf<T>*>(t.tensor_data().data());
}
template <typename T>
BitsOf<T>* BitsOut(Tensor* t) {
  return reinterpret_cast<BitsOf<T>*>(const_cast<char*>(t->tensor_data().data()));
}

// Calls a functor. CPU functors cannot fail; GPU functors return CUDA's error text (nullptr
// when the kernel was enqueued), which becomes the op's error, with the likely fix.
template <typename Call>
absl::Status Run(const char* op, Call call) {
  if constexpr (std::is_void_v<decltype(call())>) {
    call();
    return absl::OkStatus();
  } else {
    const char* cuda_error = call();
    if (cuda_error == nullptr) return absl::OkStatus();
    return tensorflow::errors::Internal(
        op, ": CUDA kernel launch failed: ", cuda_error,
        ". If there is no kernel image for this GPU, rebuild for its architecture "
        "(RELU_LAB_NVCC_ARCH=-arch=sm_XY python -m relu_impls.build) and restart.");
  }
}

template <typename Device, typename T>
class CustomReluOp : public OpKernel {
 public:
  explicit CustomReluOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& features = context->input(0);
    Tensor* activations = nullptr;
    OP_REQUIRES_OK(context, context->forward_input_or_allocate_output(
                                {0}, 0, features.shape(), &activations));
    const int64_t n = features.NumElements();
    if (n == 0) return;
    OP_REQUIRES_OK(context, Run("CustomRelu", [&] {
                     return Relu<Device, T>()(DeviceFor<Device>(context), BitsIn<T>(features),
                                              BitsOut<T>(activations), n);
                   }));
  }
};

template <typename Device, typename T>
class CustomReluGradOp : public OpKernel {
 public:
  explicit CustomReluGradOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& gradients = context->input(0);
    const Tensor& features = context->input(1);
    OP_REQUIRES(context, gradients.shape() == features.shape(),
                tensorflow::errors::InvalidArgument(
                    "CustomReluGrad: gradients and features must have the same shape, got ",
                    gradients.shape().DebugString(), " and ", features.shape().DebugString()));
    Tensor* backprops = nullptr;
    OP_REQUIRES_OK(context, context->forward_input_or_allocate_output(
                                {0, 1}, 0, gradients.shape(), &backprops));
    const int64_t n = gradients.NumElements();
    if (n == 0) return;
    OP_REQUIRES_OK(context, Run("CustomReluGrad", [&] {
                     return ReluGrad<Device, T>()(DeviceFor<Device>(context), BitsIn<T>(gradients),
                                                  BitsIn<T>(features), BitsOut<T>(backprops), n);
                   }));
  }
};

// A plain copy split exactly like CustomRelu, so its GB/s is the ceiling CustomRelu can reach.
template <typename Device, typename T>
class BandwidthProbeOp : public OpKernel {
 public:
  explicit BandwidthProbeOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& input = context->input(0);
    Tensor* output = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, input.shape(), &output));
    const int64_t n = input.NumElements();
    if (n == 0) return;
    OP_REQUIRES_OK(context, Run("BandwidthProbe", [&] {
                     return Copy<Device, T>()(DeviceFor<Device>(context), BitsIn<T>(input),
                                              BitsOut<T>(output), n);
                   }));
  }
};

}  // namespace

// Registers the three kernels for one device and dtype.
#define RELU_LAB_REGISTER_KERNELS(DEVICE, DeviceType, T)                          \
  REGISTER_KERNEL_BUILDER(                                                        \
      Name("CustomRelu").Device(tensorflow::DEVICE).TypeConstraint<T>("T"),       \
      CustomReluOp<DeviceType, T>);                                               \
  REGISTER_KERNEL_BUILDER(                                                        \
      Name("CustomReluGrad").Device(tensorflow::DEVICE).TypeConstraint<T>("T"),   \
      CustomReluGradOp<DeviceType, T>);                                           \
  REGISTER_KERNEL_BUILDER(                                                        \
      Name("BandwidthProbe").Device(tensorflow::DEVICE).TypeConstraint<T>("T"),   \
      BandwidthProbeOp<DeviceType, T>);

// The dtype list, once: adding a dtype here registers all three ops for it.
#define RELU_LAB_FOR_EACH_DTYPE(M, DEVICE, DeviceType) \
  M(DEVICE, DeviceType, Eigen::half)                   \
  M(DEVICE, DeviceType, Eigen::bfloat16)               \
  M(DEVICE, DeviceType, float)                         \
  M(DEVICE, DeviceType, double)

RELU_LAB_FOR_EACH_DTYPE(RELU_LAB_REGISTER_KERNELS, DEVICE_CPU, CpuDevice)
#if GOOGLE_CUDA
RELU_LAB_FOR_EACH_DTYPE(RELU_LAB_REGISTER_KERNELS, DEVICE_GPU, GpuDevice)
#endif

}  // namespace relu_lab
