// ReLU and its gradient as bit-level functions, plus the CPU functors.
//
// This header is the only place where the math lives. It needs neither TensorFlow nor Eigen,
// so nvcc compiles it for csrc/relu_kernel.cu.h and the standalone csrc/gpu_check.cu.
//
// Why bit-level: the op must be bitwise equal to tf.nn.relu / ReluGrad of TensorFlow 2.21's
// x86-64 build. That build runs every kernel with denormals-are-zero and flush-to-zero set,
// and Eigen evaluates `features.cwiseMax<PropagateNaN>(0)` with AVX packets over the first
// n - n % kPacket elements and scalar code over the rest, and the two disagree on -0.0 and
// subnormals (measured, see tests/test_custom_op_semantics.py):
//   float32/float64 body: -0.0 -> +0.0, every subnormal -> +0.0;
//   float32/float64 tail: -0.0 kept; subnormals flushed to a zero of their sign, except the
//                         first tail element when the tail length is odd, which keeps them;
//   bfloat16 body:        -0.0 kept, subnormals flushed to a zero of their sign;
//   bfloat16 tail:        -0.0 and subnormals kept;
//   float16:              everywhere -0.0 kept, negative subnormals -> +0.0.
// NaN (either sign, any payload) and +inf pass through unchanged everywhere; -inf and
// negative normals give +0.0. Integer bit operations make the result independent of the
// caller's floating-point mode, and identical on the GPU.
#ifndef RELU_LAB_CSRC_RELU_FUNCTOR_H_
#define RELU_LAB_CSRC_RELU_FUNCTOR_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

#if defined(__AVX2__) && !defined(__CUDACC__)
#include <immintrin.h>
#define RELU_LAB_STREAMING_STORES 1
#endif

#if defined(__CUDACC__)
#define RELU_LAB_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RELU_LAB_HOST_DEVICE inline
#endif

namespace relu_lab {

// How one floating-point format stores its bits, and how TF's CPU kernels treat it.
template <typename UInt, int kExponentBits, int kMantissaBits, int kPacketSize, bool kFlushesDenormals,
          bool kTailPeelsOdd, bool kBodyCanonicalNan>
struct BitFormat {
  using Bits = UInt;
  // The format itself, also when reached through a FloatFormat<T> that derives from it.
  using Format = BitFormat;
  static constexpr UInt kSign = UInt(UInt(1) << (kExponentBits + kMantissaBits));
  static constexpr UInt kAbs = UInt(kSign - 1);
  static constexpr UInt kExponent = UInt(((UInt(1) << kExponentBits) - 1) << kMantissaBits);
  static constexpr UInt kQuiet = UInt(UInt(1) << (kMantissaBits - 1));
  static constexpr UInt kMinNormal = UInt(UInt(1) << kMantissaBits);
  // x86's default NaN (what inf * 0 gives) is negative and quiet.
  static constexpr UInt kDefaultNan = UInt(kSign | kExponent | kQuiet);
  static constexpr UInt kCanonicalNan = UInt(kExponent | kQuiet);
  // Elements per Eigen packet in TF's AVX build: the scalar tail starts at n - n % kPacket.
  static constexpr int64_t kPacket = kPacketSize;
  // True where TF computes in this format under DAZ (float, double, bfloat16 widened to
  // float); float16 is widened to float first, so its subnormals become normal numbers.
  static constexpr bool kFlush = kFlushesDenormals;
  // float/double: the scalar tail's first element keeps subnormals when the tail is odd.
  static constexpr bool kPeel = kTailPeelsOdd;
  // bfloat16 gradient: the packet path returns +NaN (0x7fc0) for every NaN result.
  static constexpr bool kCanonicalNanInBody = kBodyCanonicalNan;
};

using Binary16Format = BitFormat<uint16_t, 5, 10, 8, false, false, false>;
using BFloat16Format = BitFormat<uint16_t, 8, 7, 8, true, false, true>;
using Binary32Format = BitFormat<uint32_t, 8, 23, 8, true, true, false>;
using Binary64Format = BitFormat<uint64_t, 11, 52, 4, true, true, false>;

// Maps an element type to its BitFormat; the TF and CUDA files add their 16-bit types.
template <typename T>
struct FloatFormat;
template <>
struct FloatFormat<float> : Binary32Format {};
template <>
struct FloatFormat<double> : Binary64Format {};

// Which code path of TF's kernel an element falls on; it decides -0.0 and subnormals.
enum class Lane { kBody, kTail, kTailPeel };

template <typename F>
RELU_LAB_HOST_DEVICE bool IsNan(typename F::Bits u) {
  return (u & F::kAbs) > F::kExponent;
}

// The index where TF's scalar tail starts; elements before it are in whole packets.
template <typename F>
RELU_LAB_HOST_DEVICE int64_t TailStart(int64_t n) {
  return n - n % F::kPacket;
}

template <typename F>
RELU_LAB_HOST_DEVICE Lane LaneOf(int64_t i, int64_t n) {
  const int64_t tail = TailStart<F>(n);
  if (i < tail) return Lane::kBody;
  return (F::kPeel && ((n - tail) & 1) && i == tail) ? Lane::kTailPeel : Lane::kTail;
}

// max(x, 0) as a compare-and-select with no flushing: only negative normals and -inf become
// +0.0; -0.0, subnormals and NaN pass through.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluKeepSubnormals(typename F::Bits u) {
  using B = typename F::Bits;
  const bool zero = (u & F::kSign) && (u & F::kExponent) && !IsNan<F>(u);
  return zero ? B(0) : u;
}

// max(x, 0) under DAZ returning x on ties: zeros and subnormals become a zero of their sign.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluFlushKeepSign(typename F::Bits u) {
  using B = typename F::Bits;
  return IsNan<F>(u) ? u : ((u & F::kExponent) == 0 ? B(u & F::kSign) : ((u & F::kSign) ? B(0) : u));
}

// max(x, 0) under DAZ returning 0 on ties: only NaN and positive normals/inf pass.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluFlushToPositive(typename F::Bits u) {
  using B = typename F::Bits;
  // As signed integers: true exactly for sign clear and exponent != 0. One signed compare
  // vectorises to a single instruction (an unsigned one costs three on AVX2).
  using S = std::make_signed_t<B>;
  const bool positive_normal = S(u) >= S(F::kMinNormal);
  return (positive_normal || IsNan<F>(u)) ? u : B(0);
}

// float16: widened to float exactly, so subnormals compare as nonzero; -0.0 is kept.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluWidened(typename F::Bits u) {
  using B = typename F::Bits;
  const bool zero = (u & F::kSign) && (u & F::kAbs) && !IsNan<F>(u);
  return zero ? B(0) : u;
}

// ReLU of one element (bits) on the given lane of tf.nn.relu's CPU kernel.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluBits(typename F::Bits u, Lane lane) {
  if (!F::kFlush) return ReluWidened<F>(u);
  if (F::kPeel) {  // float, double
    if (lane == Lane::kBody) return ReluFlushToPositive<F>(u);
    if (lane == Lane::kTailPeel) return ReluKeepSubnormals<F>(u);
    return ReluFlushKeepSign<F>(u);
  }
  // bfloat16
  return lane == Lane::kBody ? ReluFlushKeepSign<F>(u) : ReluKeepSubnormals<F>(u);
}

// ReluGrad of one element: gradients * (features > 0), as TF computes it under DAZ/FTZ.
// Exactly 0 passes no gradient (so features may be the op's input or its output); a NaN
// feature passes none either; a NaN or infinite gradient times 0 is NaN.
template <typename F>
RELU_LAB_HOST_DEVICE typename F::Bits ReluGradBits(typename F::Bits g, typename F::Bits f, Lane lane) {
  using B = typename F::Bits;
  const bool f_subnormal = (f & F::kExponent) == 0;
  const bool passes = !(f & F::kSign) && (f & F::kAbs) && !IsNan<F>(f) && !(F::kFlush && f_subnormal);
  const bool g_nan = IsNan<F>(g);
  const bool g_inf = (g & F::kAbs) == F::kExponent;
  if (g_nan || (!passes && g_inf)) {
    const B nan = g_nan ? B(g | F::kQuiet) : F::kDefaultNan;
    if (!F::kCanonicalNanInBody) return nan;
    // bfloat16 rounds NaN to its canonical payload
    return lane == Lane::kBody ? F::kCanonicalNan : B((nan & F::kSign) | F::kCanonicalNan);
  }
  const bool g_flushed = F::kFlush && (g & F::kExponent) == 0;
  return (!passes || g_flushed) ? B(g & F::kSign) : g;
}

// ---------------------------------------------------------------------------------------------
// Functors: one per computation, templated on Device and T like TF's relu_op_functor.h.

// The CPU "device": runs work(begin, end) over [0, n) elements; the TF kernel file decides how
// (inline below a size threshold, else split across TF's intra-op thread pool).
struct CpuDevice {
  std::function<void(int64_t n, int64_t bytes_per_element,
                     const std::function<void(int64_t, int64_t)>& work)>
      parallel_for;
  // Outputs of at least this many bytes are written with non-temporal stores: they would not
  // fit in cache anyway, and skipping the read-for-ownership saves a third of the traffic.
  int64_t stream_min_bytes = INT64_MAX;
};

template <typename Device, typename T>
struct Relu;
template <typename Device, typename T>
struct ReluGrad;
template <typename Device, typename T>
struct Copy;

namespace cpu {

// Applies ReluBits on one lane over [begin, end); separate in-place and out-of-place loops so
// the compiler vectorises both (an aliasing check would send in-place calls to scalar code).
template <typename F>
inline void ReluRange(const typename F::Bits* features, typename F::Bits* activations,
                      int64_t begin, int64_t end, Lane lane) {
  using B = typename F::Bits;
  if (lane != Lane::kBody) {
    for (int64_t i = begin; i < end; ++i) activations[i] = ReluBits<F>(features[i], lane);
    return;
  }
  if (features == activations) {
    B* data = activations;
    for (int64_t i = begin; i < end; ++i) data[i] = ReluBits<F>(data[i], Lane::kBody);
  } else {
    const B* __restrict in = features;
    B* __restrict out = activations;
    for (int64_t i = begin; i < end; ++i) out[i] = ReluBits<F>(in[i], Lane::kBody);
  }
}

#ifdef RELU_LAB_STREAMING_STORES
// Elements before the first 32-byte aligned output address, at most end - begin.
template <typename B>
inline int64_t UnalignedHead(const B* out, int64_t begin, int64_t end) {
  const auto address = reinterpret_cast<uintptr_t>(out + begin);
  const int64_t head = static_cast<int64_t>(((32 - (address & 31)) & 31) / sizeof(B));
  return head < end - begin ? head : end - begin;
}

// out[i] = element(in[i]) over [begin, end), with non-temporal stores of vector(32 bytes) from
// the first 32-byte aligned output address on; element-wise before it and in the last < 32
// bytes. CustomRelu and BandwidthProbe both run this loop, so the probe is a fair ceiling.
template <typename B, typename Element, typename Vector>
inline void StreamRange(const B* in, B* out, int64_t begin, int64_t end, Element element,
                        Vector vector) {
  constexpr int64_t kLanes = 32 / sizeof(B);
  int64_t i = begin + UnalignedHead(out, begin, end);
  for (int64_t j = begin; j < i; ++j) out[j] = element(in[j]);
  for (; i + kLanes <= end; i += kLanes) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(out + i), vector(x));
  }
  for (; i < end; ++i) out[i] = element(in[i]);
  _mm_sfence();  // this thread's streamed stores are visible before it reports its block done
}

// The body-lane rules of ReluBits on 32 bytes of lanes at once (GCC vector extensions on
// signed lanes: a compare gives an all-ones / all-zeros mask per lane). Same results as
// ReluFlushToPositive, ReluFlushKeepSign and ReluWidened; the tests compare every dtype.
template <typename F>
struct BodyVec {
  using S = std::make_signed_t<typename F::Bits>;
  typedef S V __attribute__((vector_size(32)));

  static __m256i Apply(__m256i bits) {
    const V u = (V)bits;
    const S abs = static_cast<S>(F::kAbs), exponent = static_cast<S>(F::kExponent);
    const V magnitude = u & abs;
    const V nan = magnitude > exponent;
    if (!F::kFlush) {  // float16: negative, nonzero and not NaN -> +0
      return (__m256i)(u & ~((u < S(0)) & (magnitude != S(0)) & ~nan));
    }
    if (F::kPeel) {  // float, double: only NaN and positive normals/inf pass
      return (__m256i)(u & ((u > static_cast<S>(F::kMinNormal - 1)) | nan));
    }
    // bfloat16: zeros and subnormals -> zero of their sign, negative normals -> +0
    const V exponent_zero = (u & exponent) == S(0);
    const V keep = nan | (~(u < S(0)) & ~exponent_zero);
    return (__m256i)((u & keep) | (u & static_cast<S>(F::kSign) & exponent_zero));
  }
};
#endif

// Body-lane ReLU over [begin, end) with non-temporal stores.
template <typename F>
inline void ReluBodyStreaming(const typename F::Bits* features, typename F::Bits* activations,
                              int64_t begin, int64_t end) {
#ifdef RELU_LAB_STREAMING_STORES
  using B = typename F::Bits;
  StreamRange(features, activations, begin, end,
              [](B u) { return ReluBits<F>(u, Lane::kBody); }, BodyVec<F>::Apply);
#else
  ReluRange<F>(features, activations, begin, end, Lane::kBody);
#endif
}

// Plain copy over [begin, end), with non-temporal stores when `stream`.
template <typename B>
inline void CopyRange(const B* input, B* output, int64_t begin, int64_t end, bool stream) {
#ifdef RELU_LAB_STREAMING_STORES
  if (stream) {
    StreamRange(input, output, begin, end, [](B u) { return u; }, [](__m256i x) { return x; });
    return;
  }
#endif
  std::memcpy(output + begin, input + begin, (end - begin) * sizeof(B));
}

template <typename F>
inline void ReluGradRange(const typename F::Bits* gradients, const typename F::Bits* features,
                          typename F::Bits* backprops, int64_t begin, int64_t end, int64_t n) {
  const int64_t tail = TailStart<F>(n);
  const int64_t body_end = end < tail ? end : tail;
  for (int64_t i = begin; i < body_end; ++i)
    backprops[i] = ReluGradBits<F>(gradients[i], features[i], Lane::kBody);
  for (int64_t i = begin > tail ? begin : tail; i < end; ++i)
    backprops[i] = ReluGradBits<F>(gradients[i], features[i], LaneOf<F>(i, n));
}

}  // namespace cpu

template <typename T>
struct Relu<CpuDevice, T> {
  using F = FloatFormat<T>;
  using Bits = typename F::Bits;
  // features: n elements of any shape; activations: n elements, may be the same buffer.
  void operator()(const CpuDevice& d, const Bits* features, Bits* activations, int64_t n) const {
    const int64_t tail = TailStart<F>(n);
    const bool stream = n * static_cast<int64_t>(sizeof(Bits)) >= d.stream_min_bytes;
    d.parallel_for(n, sizeof(Bits), [&](int64_t begin, int64_t end) {
      const int64_t body_end = end < tail ? end : tail;
      if (begin < body_end && stream) {
        cpu::ReluBodyStreaming<F>(features, activations, begin, body_end);
      } else if (begin < body_end) {
        cpu::ReluRange<F>(features, activations, begin, body_end, Lane::kBody);
      }
      for (int64_t i = begin > tail ? begin : tail; i < end; ++i)
        activations[i] = ReluBits<F>(features[i], LaneOf<F>(i, n));
    });
  }
};

template <typename T>
struct ReluGrad<CpuDevice, T> {
  using F = FloatFormat<T>;
  using Bits = typename F::Bits;
  // gradients: n elements backpropagated to the ReLU; features: its inputs or its outputs
  // (same gradient, since exactly 0 passes none); backprops: n elements.
  void operator()(const CpuDevice& d, const Bits* gradients, const Bits* features, Bits* backprops,
                  int64_t n) const {
    d.parallel_for(n, 3 * sizeof(Bits) / 2, [&](int64_t begin, int64_t end) {
      cpu::ReluGradRange<F>(gradients, features, backprops, begin, end, n);
    });
  }
};

template <typename T>
struct Copy<CpuDevice, T> {
  using Bits = typename FloatFormat<T>::Bits;
  // input: n elements; output: n elements, another buffer. No math: a bandwidth reference.
  // Same split and same store kind as Relu<CpuDevice, T>.
  void operator()(const CpuDevice& d, const Bits* input, Bits* output, int64_t n) const {
    const bool stream = n * static_cast<int64_t>(sizeof(Bits)) >= d.stream_min_bytes;
    d.parallel_for(n, sizeof(Bits), [&](int64_t begin, int64_t end) {
      cpu::CopyRange(input, output, begin, end, stream);
    });
  }
};

}  // namespace relu_lab

#endif  // RELU_LAB_CSRC_RELU_FUNCTOR_H_
