// The LSTM time loop on CPU for mixed precision: forward, and backpropagation through time
// written out by hand. Built as its own extension (recur_lstm_cpu) beside recurrent_cpu.cpp.
//
// Why: under torch.autocast("cpu", torch.bfloat16) torch's LSTM runs oneDNN, whose bf16
// backward pass costs about 3x its forward (measured in ../../docs/benchmarks.md, "bf16 vs
// fp32"). Here every GEMM runs in the input's dtype (bf16 on AMX under autocast): the input
// projection of the whole sequence x W_ihᵀ, one h W_hhᵀ per step, one dgates W_hh per step
// in the backward loop, and after it ∂L/∂x and the weight gradients of W_ih and W_hh as one
// GEMM each over all steps. The gate math and the cell state stay in fp32 (fp64 for fp64
// inputs). The backward loop also writes the gate gradients transposed, (4H, T·B), so both
// weight gradients are plain (non-transposed) GEMMs: bf16 GEMMs with a transposed left
// operand copy it first and ran at about half the speed (measured: 113 vs 61 ms at
// 2048×8192×512). The gate math of each step runs in one block of batch rows per thread
// (for_row_blocks): with 2 threads the serial gate math had made this loop slower than
// oneDNN's bf16 LSTM (docs/benchmarks.md, "bf16 vs fp32").
//
// Layout: time-major. x (T, B, D), h0 (B, H), w_ih (4H, D), w_hh (4H, H) in the GEMM dtype;
// c0 (B, H) and bias (4H, b_ih + b_hh, or an empty tensor) in the accumulation dtype.
// No padding mask: layers call this only for full-length batches.
//
// Gates in torch's order i, f, g, o:
//   [a_i a_f a_g a_o] = x_t W_ihᵀ + h_{t−1} W_hhᵀ + bias
//   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
//   c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)

#include <torch/extension.h>

#include <vector>

#include "row_blocks.h"

namespace {

using at::Tensor;
using recur::for_row_blocks;
using recur::row_blocks;

// Calls f(io_t{}, acc_t{}): the GEMM dtype and the dtype of the gate math and cell state.
template <typename F>
void dispatch_lstm(at::ScalarType type, const F& f) {
  switch (type) {
    case at::kDouble: f(double{}, double{}); break;
    case at::kFloat: f(float{}, float{}); break;
    case at::kBFloat16: f(c10::BFloat16{}, float{}); break;
    default: TORCH_CHECK(false, "recur's LSTM kernel takes float64, float32 or bfloat16, got ",
                         type);
  }
}

}  // namespace

// Returns (hs (T, B, H) GEMM dtype, cs (T, B, H), tanh(cs) (T, B, H), gates (T, B, 4H): the
// activated i, f, g, o), the last three in the accumulation dtype, saved for backward.
std::vector<Tensor> lstm_forward(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_hh) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = x.size(0), B = x.size(1), D = x.size(2), H = h0.size(1);
  // x W_ihᵀ for every step: one GEMM
  const Tensor xw = at::mm(x.reshape({T * B, D}), w_ih.t()).view({T, B, 4 * H});
  const bool has_bias = b_hh.defined() && b_hh.numel() > 0;
  Tensor hs = at::empty({T, B, H}, xw.options());
  Tensor cs = at::empty({T, B, H}, c0.options());
  Tensor tcs = at::empty({T, B, H}, c0.options());
  Tensor gates = at::empty({T, B, 4 * H}, c0.options());
  Tensor gh = at::empty({B, 4 * H}, xw.options());
  dispatch_lstm(xw.scalar_type(), [&](auto io, auto acc) {
    using io_t = decltype(io);
    using acc_t = decltype(acc);
    const io_t* g = gh.data_ptr<io_t>();
    const acc_t* bias = has_bias ? b_hh.data_ptr<acc_t>() : nullptr;
    const int64_t blocks = row_blocks(B);
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h_prev = t > 0 ? hs[t - 1] : h0;
      at::mm_out(gh, h_prev, w_hh.t());                           // h_{t−1} W_hhᵀ
      Tensor a = gates[t];                                        // (B, 4H)
      Tensor c_t = cs[t];
      Tensor tc_t = tcs[t];
      const io_t* xp = xw[t].data_ptr<io_t>();
      acc_t* ap = a.data_ptr<acc_t>();
      const acc_t* cp = (t > 0 ? cs[t - 1] : c0).data_ptr<acc_t>();
      acc_t* c = c_t.data_ptr<acc_t>();
      const acc_t* tc = tc_t.data_ptr<acc_t>();
      io_t* h = hs[t].data_ptr<io_t>();
      for_row_blocks(B, blocks, [&](int64_t, int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {                       // pre-activations
          const int64_t r = b * 4 * H;
          if (bias) {
            for (int64_t k = 0; k < 4 * H; ++k) ap[r + k] = acc_t(xp[r + k]) + acc_t(g[r + k]) + bias[k];
          } else {
            for (int64_t k = 0; k < 4 * H; ++k) ap[r + k] = acc_t(xp[r + k]) + acc_t(g[r + k]);
          }
        }
        Tensor rows = a.narrow(0, b0, b1 - b0);
        rows.narrow(1, 0, 2 * H).sigmoid_();                      // i, f
        rows.narrow(1, 2 * H, H).tanh_();                         // g
        rows.narrow(1, 3 * H, H).sigmoid_();                      // o
        for (int64_t b = b0; b < b1; ++b) {                       // c = f ⊙ c_{t−1} + i ⊙ g
          const acc_t* row = ap + b * 4 * H;
          for (int64_t j = 0; j < H; ++j) {
            c[b * H + j] = row[H + j] * cp[b * H + j] + row[j] * row[2 * H + j];
          }
        }
        Tensor tc_rows = tc_t.narrow(0, b0, b1 - b0);
        at::tanh_out(tc_rows, c_t.narrow(0, b0, b1 - b0));
        for (int64_t b = b0; b < b1; ++b) {                       // h = o ⊙ tanh(c)
          const acc_t* o = ap + b * 4 * H + 3 * H;
          for (int64_t j = 0; j < H; ++j) h[b * H + j] = io_t(o[j] * tc[b * H + j]);
        }
      });
    }
  });
  return {hs, cs, tcs, gates};
}

// Returns (grad_x (T, B, D), grad_h0 (B, H), grad_c0 (B, H), grad_w_ih (4H, D),
// grad_w_hh (4H, H), grad_bias (4H) or undefined), in the dtypes of the inputs.
// grad_hs (T, B, H) is ∂L/∂h_t from above (GEMM dtype), grad_cT (B, H) ∂L/∂c_T.
std::vector<Tensor> lstm_backward(const Tensor& grad_hs, const Tensor& grad_cT, const Tensor& x,
                                  const Tensor& h0, const Tensor& c0, const Tensor& hs,
                                  const Tensor& cs, const Tensor& tcs, const Tensor& gates,
                                  const Tensor& w_ih, const Tensor& w_hh, bool has_bias) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = hs.size(0), B = hs.size(1), H = hs.size(2);
  Tensor dgates = at::empty({T, B, 4 * H}, hs.options());       // ∂L/∂a_t
  Tensor dgates_t = at::empty({4 * H, T * B}, hs.options());    // the same, transposed
  Tensor dh_rec = at::zeros({B, H}, hs.options());              // ∂L/∂h_t through W_hh
  Tensor dc = grad_cT.clone();                                   // ∂L/∂c_t
  const int64_t blocks = row_blocks(B);
  Tensor grad_b_blocks = at::zeros({blocks, 4 * H}, cs.options());  // per-block partial sums
  dispatch_lstm(hs.scalar_type(), [&](auto io, auto acc) {
    using io_t = decltype(io);
    using acc_t = decltype(acc);
    acc_t* d_c = dc.data_ptr<acc_t>();
    acc_t* db_blocks = grad_b_blocks.data_ptr<acc_t>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const io_t* dr = dh_rec.data_ptr<io_t>();
      const io_t* gt = grad_hs[t].data_ptr<io_t>();
      const acc_t* ap = gates[t].data_ptr<acc_t>();
      const acc_t* tc = tcs[t].data_ptr<acc_t>();
      const acc_t* cp = (t > 0 ? cs[t - 1] : c0).data_ptr<acc_t>();
      Tensor da_t = dgates[t];
      io_t* da = da_t.data_ptr<io_t>();
      for_row_blocks(B, blocks, [&](int64_t block, int64_t b0, int64_t b1) {
        acc_t* db = db_blocks + block * 4 * H;
        for (int64_t b = b0; b < b1; ++b) {
          const acc_t* row = ap + b * 4 * H;
          io_t* out = da + b * 4 * H;
          for (int64_t j = 0; j < H; ++j) {
            const int64_t k = b * H + j;
            const acc_t i = row[j], f = row[H + j], g = row[2 * H + j], o = row[3 * H + j];
            const acc_t dh = acc_t(dr[k]) + acc_t(gt[k]);           // ∂L/∂h_t, both paths
            const acc_t dct = d_c[k] + dh * o * (acc_t(1) - tc[k] * tc[k]);  // through tanh(c)
            const acc_t da_i = dct * g * i * (acc_t(1) - i);        // through i ⊙ g and σ
            const acc_t da_f = dct * cp[k] * f * (acc_t(1) - f);    // through f ⊙ c_{t−1} and σ
            const acc_t da_g = dct * i * (acc_t(1) - g * g);        // through i ⊙ g and tanh
            const acc_t da_o = dh * tc[k] * o * (acc_t(1) - o);     // through o ⊙ tanh(c) and σ
            d_c[k] = dct * f;                                       // to c_{t−1}
            out[j] = io_t(da_i);
            out[H + j] = io_t(da_f);
            out[2 * H + j] = io_t(da_g);
            out[3 * H + j] = io_t(da_o);
            if (has_bias) {
              db[j] += da_i;
              db[H + j] += da_f;
              db[2 * H + j] += da_g;
              db[3 * H + j] += da_o;
            }
          }
        }
        dgates_t.narrow(1, t * B + b0, b1 - b0).copy_(da_t.narrow(0, b0, b1 - b0).t());
      });
      at::mm_out(dh_rec, da_t, w_hh);                             // ∂L/∂a_t W_hh → h_{t−1}
    }
  });
  // Σ_t ∂L/∂a_tᵀ h_{t−1}, Σ_t ∂L/∂a_tᵀ x_t, ∂L/∂a_t W_ih: one GEMM each over all steps
  const auto D = x.size(2);
  Tensor h_prev = at::cat({h0.unsqueeze(0), hs.narrow(0, 0, T - 1)}, 0);
  Tensor grad_w_hh = at::mm(dgates_t, h_prev.reshape({T * B, H}));
  Tensor grad_w_ih = at::mm(dgates_t, x.reshape({T * B, D}));
  Tensor grad_x = at::mm(dgates.reshape({T * B, 4 * H}), w_ih).view({T, B, D});
  return {grad_x, dh_rec, dc, grad_w_ih, grad_w_hh,
          has_bias ? grad_b_blocks.sum(0) : Tensor()};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM forward over time (GEMMs in the input dtype)");
  m.def("lstm_backward", &lstm_backward, "LSTM BPTT (GEMMs in the input dtype)");
}
