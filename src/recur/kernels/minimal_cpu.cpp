// minGRU and minLSTM on CPU: the gates, the candidate and the linear scan
// h_t = a_t ⊙ h_{t−1} + b_t in one pass over time, and the backward pass in one reverse pass.
//
// Why: after the one input GEMM (xw = x W_ihᵀ, done outside by autograd) the
// readable path runs about ten whole-sequence elementwise ops (σ, 1 − z, z ⊙ h̃, masks, …)
// and a Python loop of T steps, each op a full pass over (B, T, H) memory; at T = 4096 that
// is about a third of a training step (../../docs/benchmarks.md). Here one loop forms the
// gates (ATen's σ, vectorised with the CPU's widest instructions, on chunks of kChunk steps
// that are still in cache), a_t and b_t, and scans; the backward is one loop that walks t
// backwards, prefetching the rows it will read next (hardware prefetchers follow a
// downward walk poorly: 109 → 70 ms at B16 T4096 H256, 1 thread). The inner loops run over H, contiguous, so -O3 vectorises them with the
// baseline instruction set. -march=native is not used: each loop does a few flops per
// element it streams through memory, and a build cached in a shared folder must not depend
// on the CPU that compiled it (whether AVX-512 would pay off here was not measured).
//
// The input bias b_ih is added here, not by the GEMM: an addmm first copies the broadcast
// bias into its whole (B, T, G·H) output, and its gradient is then one more pass summing
// ∂L/∂xw over (B, T); here the bias rides along with the loops that read xw anyway, and
// its gradient is summed per block of batch rows (row_blocks.h) inside the backward loop.
//
// Layout: batch-major, as the input GEMM writes it — xw (B, T, G·H), h0 (B, H), mask (B, T)
// uint8 (1 at real steps; a padded step carries the state, a = 1, b = 0) or an empty
// tensor; bias (G·H) or an empty tensor; outputs hs (B, T, H). Sequences are independent,
// so the loop over b runs in one block of rows per thread when torch has more than one.
//
// With the bias added (xz + b_z and so on; written xz below):
// minGRU (G = 2, rows z, h̃):     z = σ(xz),  a = 1 − z,  b = z ⊙ h̃
// minLSTM (G = 3, rows f, i, h̃):  f = σ(xf), i = σ(xi), f' = f / (f + i), i' = i / (f + i),
//                                 a = f',  b = i' ⊙ h̃
// Backward, with g_t = ∂L/∂h_t through all paths (g_t = ∂L/∂h_t direct + a_{t+1} ⊙ g_{t+1})
// and the forward pass's saved slope s_t (so the backward reads neither xw nor hs):
//   minGRU:  s = (h̃ − h_{t−1}) z (1 − z),  ∂L/∂xz = g s,  ∂L/∂h̃ = g z
//   minLSTM: s = (h̃ − h_{t−1}) f' i',  q = g s (= f' i' (∂L/∂i' − ∂L/∂f')),  ∂L/∂h̃ = g i',
//            ∂L/∂xf = −q (1 − f),  ∂L/∂xi = q (1 − i)
//   both:    ∂L/∂h_0 = a_1 ⊙ g_1,  ∂L/∂bias = Σ_{b,t} ∂L/∂xw
// Saving s (one (B, T, H) tensor) instead of reading h̃ and h_{t−1} again took the
// backward loop from 138 to 101–114 ms at B16 T4096 H256 (1 thread, profiles of one step).

#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "row_blocks.h"

namespace {

using at::Tensor;
using recur::for_row_blocks;
using recur::row_blocks;

enum Kind : int64_t { kMinGRU = 0, kMinLSTM = 1 };

// The forward pass takes σ of the gates kChunk steps at a time (ATen's vectorised σ), just
// before the scan reads them: the chunk (kChunk · (G − 1) · H values) is still in cache.
constexpr int64_t kChunk = 256;

// The backward pass prefetches the rows kAhead steps ahead (it walks time downwards).
constexpr int64_t kAhead = 4;

int64_t num_gates(int64_t kind) { return kind == kMinGRU ? 2 : 3; }

void check_inputs(const Tensor& xw, const Tensor& h0, const Tensor& mask, const Tensor& bias,
                  int64_t kind) {
  TORCH_CHECK(kind == kMinGRU || kind == kMinLSTM, "kind must be 0 (minGRU) or 1 (minLSTM)");
  TORCH_CHECK(xw.dim() == 3 && xw.is_contiguous(), "xw must be a contiguous (B, T, G·H) tensor");
  TORCH_CHECK(h0.dim() == 2 && h0.is_contiguous() && h0.size(0) == xw.size(0) &&
                  xw.size(2) == num_gates(kind) * h0.size(1),
              "h0 must be a contiguous (B, H) tensor with xw (B, T, G·H)");
  TORCH_CHECK(h0.scalar_type() == xw.scalar_type(), "xw and h0 must have the same dtype");
  TORCH_CHECK(!mask.defined() || mask.numel() == 0 ||
                  (mask.scalar_type() == at::kByte && mask.is_contiguous() &&
                   mask.size(0) == xw.size(0) && mask.size(1) == xw.size(1)),
              "mask must be a contiguous (B, T) uint8 tensor or empty");
  TORCH_CHECK(bias.numel() == 0 || (bias.dim() == 1 && bias.is_contiguous() &&
                                    bias.size(0) == xw.size(2) &&
                                    bias.scalar_type() == xw.scalar_type()),
              "bias must be a contiguous (G·H) tensor of xw's dtype or empty");
}

}  // namespace

// Returns (hs (B, T, H), gates (B, T, (G − 1)·H), slope (B, T, H)), the last two saved for
// the backward pass: σ of the gate pre-activations (z for minGRU; f, i for minLSTM) and
// slope = (h̃_t − h_{t−1}) z (1 − z) (minGRU) or (h̃_t − h_{t−1}) f' i' (minLSTM), 0 at
// padded steps. With them the backward pass reads neither xw nor hs.
std::vector<Tensor> minimal_forward(const Tensor& xw, const Tensor& h0, const Tensor& mask,
                                    const Tensor& bias, int64_t kind) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  check_inputs(xw, h0, mask, bias, kind);
  const int64_t B = xw.size(0), T = xw.size(1), H = h0.size(1), G = num_gates(kind);
  const bool masked = mask.defined() && mask.numel() > 0;
  const bool has_bias = bias.numel() > 0;
  Tensor gates = at::empty({B, T, (G - 1) * H}, xw.options());
  Tensor hs = at::empty({B, T, H}, xw.options());
  Tensor slope = at::empty({B, T, H}, xw.options());
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "minimal_forward", [&] {
    const scalar_t* x = xw.data_ptr<scalar_t>();
    scalar_t* s = gates.data_ptr<scalar_t>();
    const scalar_t* start = h0.data_ptr<scalar_t>();
    const uint8_t* keep = masked ? mask.data_ptr<uint8_t>() : nullptr;
    const std::vector<scalar_t> zeros(G * H, scalar_t(0));
    const scalar_t* __restrict__ gate_bias = has_bias ? bias.data_ptr<scalar_t>() : zeros.data();
    const scalar_t* __restrict__ cand_bias = gate_bias + (G - 1) * H;
    scalar_t* out = hs.data_ptr<scalar_t>();
    scalar_t* slopes = slope.data_ptr<scalar_t>();
    for_row_blocks(B, row_blocks(B), [&](int64_t, int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        for (int64_t t = 0; t < T; ++t) {
          if (t % kChunk == 0) {        // σ of the next kChunk steps' gates, left in cache
            const int64_t steps = std::min(kChunk, T - t), width = (G - 1) * H;
            for (int64_t r = b * T + t; r < b * T + t + steps; ++r) {
              const scalar_t* __restrict__ pre = x + r * G * H;
              scalar_t* __restrict__ gate = s + r * width;
              for (int64_t j = 0; j < width; ++j) gate[j] = pre[j] + gate_bias[j];
            }
            gates.select(0, b).narrow(0, t, steps).sigmoid_();
          }
          const int64_t row = b * T + t;
          const scalar_t* __restrict__ h_prev = t > 0 ? out + (row - 1) * H : start + b * H;
          scalar_t* __restrict__ h = out + row * H;
          scalar_t* __restrict__ sl = slopes + row * H;
          const scalar_t* __restrict__ cand = x + row * G * H + (G - 1) * H;   // h̃_t − b_h̃
          const scalar_t* __restrict__ gate = s + row * (G - 1) * H;
          if (keep && !keep[row]) {                                  // padded: carry
            for (int64_t j = 0; j < H; ++j) {
              h[j] = h_prev[j];
              sl[j] = scalar_t(0);
            }
          } else if (kind == kMinGRU) {
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t z = gate[j], c = cand[j] + cand_bias[j];
              h[j] = (scalar_t(1) - z) * h_prev[j] + z * c;
              sl[j] = (c - h_prev[j]) * z * (scalar_t(1) - z);
            }
          } else {
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t f = gate[j], i = gate[H + j], total = f + i;
              const scalar_t f_norm = f / total, i_norm = i / total, c = cand[j] + cand_bias[j];
              h[j] = f_norm * h_prev[j] + i_norm * c;
              sl[j] = (c - h_prev[j]) * f_norm * i_norm;
            }
          }
        }
      }
    });
  });
  return {hs, gates, slope};
}

// Returns (grad_xw (B, T, G·H), grad_h0 (B, H), grad_bias (G·H) or an empty tensor).
// grad_hs (B, T, H) may have any strides over (B, T) (0 for a broadcast gradient such as
// that of out.sum()) but unit stride over H.
std::vector<Tensor> minimal_backward(const Tensor& grad_hs, const Tensor& mask,
                                     const Tensor& gates, const Tensor& slope, int64_t kind,
                                     bool has_bias) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  TORCH_CHECK(kind == kMinGRU || kind == kMinLSTM, "kind must be 0 (minGRU) or 1 (minLSTM)");
  TORCH_CHECK(slope.dim() == 3 && slope.is_contiguous(), "slope must be a contiguous (B, T, H)");
  const int64_t B = slope.size(0), T = slope.size(1), H = slope.size(2), G = num_gates(kind);
  TORCH_CHECK(gates.is_contiguous() && gates.dim() == 3 && gates.size(0) == B &&
                  gates.size(1) == T && gates.size(2) == (G - 1) * H,
              "gates must be a contiguous (B, T, (G − 1)·H) tensor");
  TORCH_CHECK(grad_hs.sizes() == slope.sizes() && (H == 1 || grad_hs.stride(2) == 1) &&
                  grad_hs.scalar_type() == slope.scalar_type(),
              "grad_hs must be shaped as hs with unit stride over H");
  const bool masked = mask.defined() && mask.numel() > 0;
  TORCH_CHECK(!masked || (mask.scalar_type() == at::kByte && mask.is_contiguous() &&
                          mask.size(0) == B && mask.size(1) == T),
              "mask must be a contiguous (B, T) uint8 tensor or empty");
  const int64_t GH = G * H, blocks = row_blocks(B);
  Tensor grad_xw = at::empty({B, T, GH}, slope.options());
  Tensor grad_h0 = at::empty({B, H}, slope.options());
  Tensor grad_bias_blocks = at::zeros({blocks, has_bias ? GH : 0}, slope.options());
  AT_DISPATCH_FLOATING_TYPES(slope.scalar_type(), "minimal_backward", [&] {
    const scalar_t* s = gates.data_ptr<scalar_t>();
    const scalar_t* slopes = slope.data_ptr<scalar_t>();
    const scalar_t* dout = grad_hs.data_ptr<scalar_t>();
    const int64_t stride_b = grad_hs.stride(0), stride_t = grad_hs.stride(1);
    const uint8_t* keep = masked ? mask.data_ptr<uint8_t>() : nullptr;
    scalar_t* dx = grad_xw.data_ptr<scalar_t>();
    scalar_t* dstart = grad_h0.data_ptr<scalar_t>();
    scalar_t* dbias_blocks = grad_bias_blocks.data_ptr<scalar_t>();
    for_row_blocks(B, blocks, [&](int64_t block, int64_t begin, int64_t end) {
      scalar_t* __restrict__ db = has_bias ? dbias_blocks + block * GH : nullptr;
      for (int64_t b = begin; b < end; ++b) {
        // carry = a_{t+1} ⊙ g_{t+1}, the part of ∂L/∂h_t that comes from later steps
        scalar_t* __restrict__ carry = dstart + b * H;
        for (int64_t j = 0; j < H; ++j) carry[j] = scalar_t(0);
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t row = b * T + t;
          const scalar_t* __restrict__ direct = dout + b * stride_b + t * stride_t;
          const scalar_t* __restrict__ gate = s + row * (G - 1) * H;
          const scalar_t* __restrict__ sl = slopes + row * H;
          scalar_t* __restrict__ d = dx + row * GH;
          if (t >= kAhead) {          // the loop walks memory downwards: fetch rows ahead
            constexpr int64_t line = 64 / sizeof(scalar_t);
            const int64_t ahead = row - kAhead;
            for (int64_t j = 0; j < (G - 1) * H; j += line)
              __builtin_prefetch(s + ahead * (G - 1) * H + j);
            for (int64_t j = 0; j < H; j += line) {
              __builtin_prefetch(slopes + ahead * H + j);
              __builtin_prefetch(dout + b * stride_b + (t - kAhead) * stride_t + j);
            }
            for (int64_t j = 0; j < GH; j += line) __builtin_prefetch(dx + ahead * GH + j, 1);
          }
          if (keep && !keep[row]) {                                // padded: a = 1, b = 0
            for (int64_t j = 0; j < GH; ++j) d[j] = scalar_t(0);
            for (int64_t j = 0; j < H; ++j) carry[j] += direct[j];
          } else if (kind == kMinGRU) {
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t g = direct[j] + carry[j], z = gate[j];
              d[j] = g * sl[j];                                       // ∂L/∂xz
              d[H + j] = g * z;                                       // ∂L/∂h̃
              carry[j] = (scalar_t(1) - z) * g;                       // a_t ⊙ g_t
            }
          } else {
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t g = direct[j] + carry[j], f = gate[j], i = gate[H + j];
              const scalar_t total = f + i, q = g * sl[j];
              d[j] = -q * (scalar_t(1) - f);                          // ∂L/∂xf
              d[H + j] = q * (scalar_t(1) - i);                       // ∂L/∂xi
              d[2 * H + j] = g * (i / total);                         // ∂L/∂h̃
              carry[j] = (f / total) * g;                             // a_t ⊙ g_t
            }
          }
          if (db)
            for (int64_t j = 0; j < GH; ++j) db[j] += d[j];
        }
      }
    });
  });
  return {grad_xw, grad_h0, has_bias ? grad_bias_blocks.sum(0) : Tensor()};
}

void register_minimal(pybind11::module& m) {
  m.def("minimal_forward", &minimal_forward, "minGRU / minLSTM gates and scan, forward");
  m.def("minimal_backward", &minimal_backward, "minGRU / minLSTM gates and scan, backward");
}
