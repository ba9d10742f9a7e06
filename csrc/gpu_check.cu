// Standalone check of the CUDA ReLU kernels (no TensorFlow):
//   nvcc -O3 -arch=sm_90 csrc/gpu_check.cu -o gpu_check && ./gpu_check
// 1. Bitwise: ReluKernel and ReluGradKernel against the host reference (relu_functor.h, the
//    same functions the CPU op runs) for float, half, bfloat16 and double on special values
//    (±0, ±NaN with payloads, ±inf, ±subnormals, ±min normal, ±max) at every position of
//    lengths 0..70, 1023, 1025, 100003 and 2^20 + 3, out of place and in place.
// 2. Bandwidth: ReluKernel and CopyKernel vs cudaMemcpy device-to-device at 2^28 floats,
//    GB/s counting bytes read + written, best and median of N launches timed with cudaEvents.
// Prints a table and PASS, or FAIL and exits 1; any CUDA error exits 2.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "relu_kernel.cu.h"

namespace relu_lab {
// The CUDA element types map onto the same bit formats as TF's Eigen::half / bfloat16.
template <>
struct FloatFormat<__half> : Binary16Format {};
template <>
struct FloatFormat<__nv_bfloat16> : BFloat16Format {};
}  // namespace relu_lab

namespace {

using relu_lab::LaneOf;

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    const cudaError_t error_ = (call);                                                   \
    if (error_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "CUDA error at %s:%d: %s: %s\n", __FILE__, __LINE__, #call,    \
                   cudaGetErrorString(error_));                                          \
      std::exit(2);                                                                      \
    }                                                                                    \
  } while (0)

template <typename F>
struct Layout;
template <>
struct Layout<relu_lab::Binary16Format> {
  static constexpr const char* kName = "half";
  static constexpr int kMantissa = 10;
};
template <>
struct Layout<relu_lab::BFloat16Format> {
  static constexpr const char* kName = "bfloat16";
  static constexpr int kMantissa = 7;
};
template <>
struct Layout<relu_lab::Binary32Format> {
  static constexpr const char* kName = "float";
  static constexpr int kMantissa = 23;
};
template <>
struct Layout<relu_lab::Binary64Format> {
  static constexpr const char* kName = "double";
  static constexpr int kMantissa = 52;
};

template <typename F>
std::vector<typename F::Bits> SpecialBits() {
  using B = typename F::Bits;
  const B min_normal = B(B(1) << Layout<F>::kMantissa);
  const B one = B(F::kExponent >> 1 & F::kExponent);  // exponent bias: 1.0 for IEEE formats
  const std::vector<B> positive = {
      B(0), B(F::kExponent | F::kQuiet), B(F::kExponent | F::kQuiet | 5), B(F::kExponent | 1),
      F::kExponent, one, B(1), B(min_normal - 1), min_normal, B(F::kExponent - 1),
      B(min_normal * 3 + 7)};
  std::vector<B> all = positive;
  for (B p : positive) all.push_back(B(p | F::kSign));
  return all;
}

struct Tally {
  int64_t checked = 0;
  int64_t mismatches = 0;
};

template <typename F>
void Expect(Tally* tally, const char* what, int64_t n, int64_t i, uint64_t input,
            uint64_t gradient, uint64_t got, uint64_t want) {
  ++tally->checked;
  if (got == want) return;
  if (tally->mismatches++ < 10) {
    std::printf("MISMATCH %s %s n=%lld i=%lld input=%#llx gradient=%#llx got=%#llx want=%#llx\n",
                Layout<F>::kName, what, static_cast<long long>(n), static_cast<long long>(i),
                static_cast<unsigned long long>(input), static_cast<unsigned long long>(gradient),
                static_cast<unsigned long long>(got), static_cast<unsigned long long>(want));
  }
}

// Runs the forward and gradient kernels on one input layout and compares every element.
template <typename F>
void CheckLayout(Tally* tally, const std::vector<typename F::Bits>& x,
                 const std::vector<typename F::Bits>& g, typename F::Bits* d_x,
                 typename F::Bits* d_g, typename F::Bits* d_y) {
  using B = typename F::Bits;
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<B> y(n);
  if (n > 0) {
    CUDA_CHECK(cudaMemcpy(d_x, x.data(), n * sizeof(B), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_g, g.data(), n * sizeof(B), cudaMemcpyHostToDevice));
  }
  CUDA_CHECK((relu_lab::gpu::LaunchReluKernel<F>(d_x, d_y, n, 0)));
  CUDA_CHECK(cudaDeviceSynchronize());
  if (n > 0) CUDA_CHECK(cudaMemcpy(y.data(), d_y, n * sizeof(B), cudaMemcpyDeviceToHost));
  for (int64_t i = 0; i < n; ++i) {
    Expect<F>(tally, "relu", n, i, x[i], 0, y[i], relu_lab::ReluBits<F>(x[i], LaneOf<F>(i, n)));
  }
  CUDA_CHECK((relu_lab::gpu::LaunchReluGradKernel<F>(d_g, d_x, d_y, n, 0)));
  CUDA_CHECK(cudaDeviceSynchronize());
  if (n > 0) CUDA_CHECK(cudaMemcpy(y.data(), d_y, n * sizeof(B), cudaMemcpyDeviceToHost));
  for (int64_t i = 0; i < n; ++i) {
    const B want = relu_lab::ReluGradBits<F>(g[i], x[i], LaneOf<F>(i, n));
    Expect<F>(tally, "relu_grad", n, i, x[i], g[i], y[i], want);
  }
  // In place, as TF runs it when it forwards the input buffer to the output.
  CUDA_CHECK((relu_lab::gpu::LaunchReluKernel<F>(d_x, d_x, n, 0)));
  CUDA_CHECK(cudaDeviceSynchronize());
  if (n > 0) CUDA_CHECK(cudaMemcpy(y.data(), d_x, n * sizeof(B), cudaMemcpyDeviceToHost));
  for (int64_t i = 0; i < n; ++i) {
    Expect<F>(tally, "relu_in_place", n, i, x[i], 0, y[i],
              relu_lab::ReluBits<F>(x[i], LaneOf<F>(i, n)));
  }
}

template <typename F>
Tally CheckFormat() {
  using B = typename F::Bits;
  const std::vector<B> specials = SpecialBits<F>();
  const int64_t k = static_cast<int64_t>(specials.size());
  const int64_t max_n = (int64_t{1} << 20) + 3;
  B *d_x = nullptr, *d_g = nullptr, *d_y = nullptr;
  CUDA_CHECK(cudaMalloc(&d_x, max_n * sizeof(B)));
  CUDA_CHECK(cudaMalloc(&d_g, max_n * sizeof(B)));
  CUDA_CHECK(cudaMalloc(&d_y, max_n * sizeof(B)));
  std::mt19937_64 rng(42);
  Tally tally;
  std::vector<int64_t> lengths;
  for (int64_t n = 0; n <= 70; ++n) lengths.push_back(n);
  for (int64_t n : {int64_t{1023}, int64_t{1025}, int64_t{100003}, max_n}) lengths.push_back(n);
  for (int64_t n : lengths) {
    // Short lengths: every special value at every position; long ones: random bits too.
    const int64_t shifts = n <= 70 ? k : 2;
    for (int64_t shift = 0; shift < shifts; ++shift) {
      std::vector<B> x(n), g(n);
      for (int64_t i = 0; i < n; ++i) {
        const bool special = n <= 70 || i % 3 == 0 || i >= n - 2 * k;
        x[i] = special ? specials[(i + shift) % k] : B(rng());
        g[i] = specials[(i * 7 + shift) % k];
      }
      CheckLayout<F>(&tally, x, g, d_x, d_g, d_y);
    }
  }
  CUDA_CHECK(cudaFree(d_x));
  CUDA_CHECK(cudaFree(d_g));
  CUDA_CHECK(cudaFree(d_y));
  return tally;
}

struct Speed {
  double best_gbps;
  double median_gbps;
};

template <typename Launch>
Speed Time(Launch launch, double bytes, int runs) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) launch();  // warm-up
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> gbps;
  for (int i = 0; i < runs; ++i) {
    CUDA_CHECK(cudaEventRecord(start));
    launch();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    gbps.push_back(bytes / (ms * 1e-3) / 1e9);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(gbps.begin(), gbps.end());
  return {gbps.back(), gbps[gbps.size() / 2]};
}

template <typename F>
Speed TimeRelu(int64_t n, int runs) {
  using B = typename F::Bits;
  B *d_x = nullptr, *d_y = nullptr;
  CUDA_CHECK(cudaMalloc(&d_x, n * sizeof(B)));
  CUDA_CHECK(cudaMalloc(&d_y, n * sizeof(B)));
  CUDA_CHECK(cudaMemset(d_x, 0x5a, n * sizeof(B)));  // positive normals: every element stored
  const Speed s = Time([&] { CUDA_CHECK((relu_lab::gpu::LaunchReluKernel<F>(d_x, d_y, n, 0))); },
                       2.0 * n * sizeof(B), runs);
  CUDA_CHECK(cudaFree(d_x));
  CUDA_CHECK(cudaFree(d_y));
  return s;
}

}  // namespace

int main() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::printf("device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.totalGlobalMem / double(1 << 30));

  std::printf("\n-- bitwise check against the host reference (relu_functor.h)\n");
  int64_t mismatches = 0;
  const Tally tallies[] = {CheckFormat<relu_lab::Binary32Format>(),
                           CheckFormat<relu_lab::Binary16Format>(),
                           CheckFormat<relu_lab::BFloat16Format>(),
                           CheckFormat<relu_lab::Binary64Format>()};
  const char* names[] = {"float", "half", "bfloat16", "double"};
  for (int i = 0; i < 4; ++i) {
    std::printf("%-9s %12lld elements checked, %lld mismatches\n", names[i],
                static_cast<long long>(tallies[i].checked),
                static_cast<long long>(tallies[i].mismatches));
    mismatches += tallies[i].mismatches;
  }

  const int64_t n = int64_t{1} << 28;
  const int runs = 20;
  std::printf("\n-- bandwidth at 2^28 elements, GB/s = (bytes read + written) / time, %d runs\n",
              runs);
  float *d_a = nullptr, *d_b = nullptr;
  CUDA_CHECK(cudaMalloc(&d_a, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_b, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(d_a, 0x3f, n * sizeof(float)));
  const double float_bytes = 2.0 * n * sizeof(float);
  const Speed memcpy_speed = Time(
      [&] { CUDA_CHECK(cudaMemcpyAsync(d_b, d_a, n * sizeof(float), cudaMemcpyDeviceToDevice)); },
      float_bytes, runs);
  using F32 = relu_lab::Binary32Format;
  const Speed copy_speed = Time(
      [&] {
        CUDA_CHECK((relu_lab::gpu::LaunchCopyKernel<F32>(reinterpret_cast<uint32_t*>(d_a),
                                                         reinterpret_cast<uint32_t*>(d_b), n, 0)));
      },
      float_bytes, runs);
  CUDA_CHECK(cudaFree(d_a));
  CUDA_CHECK(cudaFree(d_b));
  const Speed relu_f32 = TimeRelu<F32>(n, runs);
  const Speed relu_f16 = TimeRelu<relu_lab::Binary16Format>(n, runs);
  const Speed relu_bf16 = TimeRelu<relu_lab::BFloat16Format>(n, runs);

  std::printf("%-32s %10s %12s %12s\n", "kernel", "best GB/s", "median GB/s", "vs memcpy");
  const struct {
    const char* name;
    Speed speed;
  } rows[] = {{"cudaMemcpy device-to-device", memcpy_speed},
              {"CopyKernel float (uint4)", copy_speed},
              {"ReluKernel float (float4)", relu_f32},
              {"ReluKernel half (8 x half)", relu_f16},
              {"ReluKernel bfloat16 (8 x bf16)", relu_bf16}};
  for (const auto& row : rows) {
    std::printf("%-32s %10.1f %12.1f %11.1f%%\n", row.name, row.speed.best_gbps,
                row.speed.median_gbps, 100.0 * row.speed.median_gbps / memcpy_speed.median_gbps);
  }

  if (mismatches != 0) {
    std::printf("\nFAIL: %lld mismatches\n", static_cast<long long>(mismatches));
    return 1;
  }
  std::printf("\nPASS\n");
  return 0;
}
