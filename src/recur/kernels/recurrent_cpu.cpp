// The time loops of the GRU (reset after the matmul, torch/cuDNN form) and the Elman RNN
// on CPU: forward, and backpropagation through time written out by hand.
//
// Why: torch.nn.GRU and nn.RNN on CPU run a generic path that builds autograd nodes for
// every small op of every step (about 13% of sgemm at H = 64, measured in
// ../../docs/benchmarks.md). Here the input projection of the whole sequence is one GEMM
// done outside (xw = x W_ihᵀ + b_ih, by autograd); the loop over t does one GEMM per step
// for h W_hhᵀ and in-place elementwise ATen ops on preallocated buffers, with no autograd;
// the backward loop does one GEMM per step for dh W_hh, and the weight gradient of W_hh is
// a single GEMM over all steps after the loop.
//
// Layout: time-major. xw (T, B, G·H), h0 (B, H), mask (T, B, 1) of 0/1 in the dtype (a
// padded step carries the state: h_t = m_t·h'_t + (1 − m_t)·h_{t−1}), w_hh (G·H, H),
// b_hh (G·H) or an empty tensor.
//
// GRU, gates in torch's order r, z, n:
//   r = σ(xr + hr), z = σ(xz + hz), n = tanh(xn + r ⊙ hn), h' = n + z ⊙ (h_{t−1} − n)
//   with [hr, hz, hn] = h_{t−1} W_hhᵀ + b_hh.
// Elman: h' = f(xw + h_{t−1} W_hhᵀ + b_hh), f ∈ {tanh, relu, sigmoid}.

#include <torch/extension.h>

#include <vector>

namespace {

using at::Tensor;

enum Activation : int64_t { kTanh = 0, kRelu = 1, kSigmoid = 2 };

// h W_hhᵀ (+ b_hh) into out: (B, G·H)
void hidden_transform(const Tensor& h, const Tensor& w_hh, const Tensor& b_hh, Tensor& out) {
  if (b_hh.defined() && b_hh.numel() > 0) {
    at::addmm_out(out, b_hh, h, w_hh.t());
  } else {
    at::mm_out(out, h, w_hh.t());
  }
}

// Σ_t dgh_tᵀ h_{t−1} and Σ_t dgh_t, from the stacked per-step gradients.
std::vector<Tensor> recurrent_weight_grads(const Tensor& dgh, const Tensor& h_prev,
                                           bool has_bias) {
  const auto T = dgh.size(0), B = dgh.size(1);
  Tensor flat_dgh = dgh.reshape({T * B, dgh.size(2)});
  Tensor flat_prev = h_prev.reshape({T * B, h_prev.size(2)});
  Tensor grad_w_hh = at::mm(flat_dgh.t(), flat_prev);
  Tensor grad_b_hh = has_bias ? flat_dgh.sum(0) : Tensor();
  return {grad_w_hh, grad_b_hh};
}

// h_{t−1} for every t: [h0, hs[0], …, hs[T−2]] as (T, B, H)
Tensor previous_states(const Tensor& h0, const Tensor& hs) {
  return at::cat({h0.unsqueeze(0), hs.narrow(0, 0, hs.size(0) - 1)}, 0);
}

}  // namespace

// Returns (hs (T, B, H), gates (T, B, 4H): r, z, n, hn saved for the backward pass).
// Per step: one GEMM, two vectorised ATen activations (sigmoid on [r z], tanh on n) and
// three fused elementwise loops.
std::vector<Tensor> gru_forward(const Tensor& xw, const Tensor& h0, const Tensor& mask,
                                const Tensor& w_hh, const Tensor& b_hh) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = xw.size(0), B = xw.size(1), H = h0.size(1);
  const bool masked = mask.defined() && mask.numel() > 0;
  Tensor hs = at::empty({T, B, H}, xw.options());
  Tensor saved = at::empty({T, B, 4 * H}, xw.options());
  Tensor gh = at::empty({B, 3 * H}, xw.options());
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gru_forward", [&] {
    const scalar_t* g = gh.data_ptr<scalar_t>();
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h = t > 0 ? hs[t - 1] : h0;
      hidden_transform(h, w_hh, b_hh, gh);
      Tensor s = saved[t];
      const scalar_t* x = xw[t].data_ptr<scalar_t>();
      scalar_t* sp = s.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {          // [r z] pre-activations; hn
        scalar_t* row = sp + b * 4 * H;
        const scalar_t* xr = x + b * 3 * H;
        const scalar_t* gr = g + b * 3 * H;
        for (int64_t j = 0; j < 2 * H; ++j) row[j] = xr[j] + gr[j];
        for (int64_t j = 0; j < H; ++j) row[3 * H + j] = gr[2 * H + j];
      }
      s.narrow(1, 0, 2 * H).sigmoid_();
      for (int64_t b = 0; b < B; ++b) {          // n pre-activation: xn + r ⊙ hn
        scalar_t* row = sp + b * 4 * H;
        const scalar_t* xn = x + b * 3 * H + 2 * H;
        for (int64_t j = 0; j < H; ++j) row[2 * H + j] = xn[j] + row[j] * row[3 * H + j];
      }
      s.narrow(1, 2 * H, H).tanh_();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* out = hs[t].data_ptr<scalar_t>();
      const scalar_t* m = masked ? mask[t].data_ptr<scalar_t>() : nullptr;
      for (int64_t b = 0; b < B; ++b) {          // h' = n + z ⊙ (h − n), carried if padded
        const scalar_t* row = sp + b * 4 * H;
        const scalar_t keep = m ? m[b] : scalar_t(1);
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t n = row[2 * H + j], z = row[H + j], old = hp[b * H + j];
          const scalar_t h_new = n + z * (old - n);
          out[b * H + j] = keep != scalar_t(0) ? h_new : old;
        }
      }
    }
  });
  return {hs, saved};
}

// One backward step of the GRU, elementwise, fused into one loop (no transcendentals: the
// activations were saved). dh (B, H) holds ∂L/∂h_t on entry and the part of ∂L/∂h_{t−1}
// that does not go through W_hh on exit; gx and gh (B, 3H) receive ∂L/∂xw_t and ∂L/∂gh_t.
template <typename scalar_t>
void gru_backward_step(int64_t B, int64_t H, const scalar_t* grad_h_t, const scalar_t* h_prev,
                       const scalar_t* saved, const scalar_t* mask, scalar_t* dh, scalar_t* gx,
                       scalar_t* gh) {
  for (int64_t b = 0; b < B; ++b) {
    const scalar_t* s = saved + b * 4 * H;
    const scalar_t *r = s, *z = s + H, *n = s + 2 * H, *hn = s + 3 * H;
    const scalar_t m = mask ? mask[b] : scalar_t(1);
    scalar_t* d = dh + b * H;
    scalar_t* x = gx + b * 3 * H;
    scalar_t* g = gh + b * 3 * H;
    const scalar_t* gt = grad_h_t + b * H;
    const scalar_t* hp = h_prev + b * H;
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t total = d[j] + gt[j];
      const scalar_t through = m * total;                       // into the cell
      const scalar_t dz_pre = through * (hp[j] - n[j]) * z[j] * (scalar_t(1) - z[j]);
      const scalar_t dn_pre = through * (scalar_t(1) - z[j]) * (scalar_t(1) - n[j] * n[j]);
      const scalar_t dr_pre = dn_pre * hn[j] * r[j] * (scalar_t(1) - r[j]);
      x[j] = dr_pre;
      x[H + j] = dz_pre;
      x[2 * H + j] = dn_pre;
      g[j] = dr_pre;
      g[H + j] = dz_pre;
      g[2 * H + j] = dn_pre * r[j];                             // ∂L/∂hn
      d[j] = (total - through) + through * z[j];                // carried + direct path
    }
  }
}

// Returns (grad_xw (T, B, 3H), grad_h0 (B, H), grad_w_hh (3H, H), grad_b_hh (3H) or undefined).
std::vector<Tensor> gru_backward(const Tensor& grad_hs, const Tensor& grad_hT, const Tensor& h0,
                                 const Tensor& hs, const Tensor& saved, const Tensor& mask,
                                 const Tensor& w_hh, bool has_bias) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const bool masked = mask.defined() && mask.numel() > 0;
  Tensor grad_xw = at::empty({T, B, 3 * H}, hs.options());
  Tensor dgh = at::empty({T, B, 3 * H}, hs.options());
  Tensor dh = grad_hT.clone();                  // ∂L/∂h_t, total
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor h_prev = t > 0 ? hs[t - 1] : h0;
      Tensor gh = dgh[t];
      gru_backward_step<scalar_t>(
          B, H, grad_hs[t].data_ptr<scalar_t>(), h_prev.data_ptr<scalar_t>(),
          saved[t].data_ptr<scalar_t>(), masked ? mask[t].data_ptr<scalar_t>() : nullptr,
          dh.data_ptr<scalar_t>(), grad_xw[t].data_ptr<scalar_t>(), gh.data_ptr<scalar_t>());
      dh.addmm_(gh, w_hh);                      // + ∂L/∂gh_t W_hh
    }
  });
  auto weights = recurrent_weight_grads(dgh, previous_states(h0, hs), has_bias);
  return {grad_xw, dh, weights[0], weights[1]};
}

// Returns (hs (T, B, H)); the backward pass reads the activation's derivative off h.
Tensor elman_forward(const Tensor& xw, const Tensor& h0, const Tensor& mask, const Tensor& w_hh,
                     const Tensor& b_hh, int64_t activation) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = xw.size(0), B = xw.size(1), H = h0.size(1);
  Tensor hs = at::empty({T, B, H}, xw.options());
  Tensor pre = at::empty({B, H}, xw.options());
  Tensor h = h0;
  const bool masked = mask.defined() && mask.numel() > 0;
  for (int64_t t = 0; t < T; ++t) {
    hidden_transform(h, w_hh, b_hh, pre);
    pre.add_(xw[t]);
    Tensor h_t = hs[t];
    switch (activation) {
      case kTanh: at::tanh_out(h_t, pre); break;
      case kRelu: at::relu_(pre); h_t.copy_(pre); break;
      default: at::sigmoid_out(h_t, pre); break;
    }
    if (masked) {
      at::sub_out(pre, h_t, h);
      at::addcmul_out(h_t, h, mask[t], pre);
    }
    h = h_t;
  }
  return hs;
}

// Returns (grad_xw (T, B, H), grad_h0, grad_w_hh, grad_b_hh or undefined).
std::vector<Tensor> elman_backward(const Tensor& grad_hs, const Tensor& grad_hT, const Tensor& h0,
                                   const Tensor& hs, const Tensor& mask, const Tensor& w_hh,
                                   int64_t activation, bool has_bias) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const bool masked = mask.defined() && mask.numel() > 0;
  Tensor grad_xw = at::empty({T, B, H}, hs.options());
  Tensor dh = grad_hT.clone();
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "elman_backward", [&] {
    scalar_t* d = dh.data_ptr<scalar_t>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* h = hs[t].data_ptr<scalar_t>();
      const scalar_t* gt = grad_hs[t].data_ptr<scalar_t>();
      const scalar_t* m = masked ? mask[t].data_ptr<scalar_t>() : nullptr;
      Tensor dpre_t = grad_xw[t];
      scalar_t* dpre = dpre_t.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t keep = m ? m[b] : scalar_t(1);
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const scalar_t total = d[k] + gt[k];
          const scalar_t through = keep * total;
          // f'(pre) from the output: tanh 1 − h², relu [h > 0], sigmoid h(1 − h). At a
          // padded step h_t is h_{t−1}, but nothing goes through the cell there.
          const scalar_t y = h[k];
          const scalar_t slope = activation == kTanh ? scalar_t(1) - y * y
                                 : activation == kRelu ? scalar_t(y > 0)
                                                       : y * (scalar_t(1) - y);
          dpre[k] = through * slope;
          d[k] = total - through;               // carried past a padded step
        }
      }
      dh.addmm_(dpre_t, w_hh);                  // + ∂L/∂pre_t W_hh
    }
  });
  auto weights = recurrent_weight_grads(grad_xw, previous_states(h0, hs), has_bias);
  return {grad_xw, dh, weights[0], weights[1]};
}

void register_minimal(pybind11::module& m);  // minimal_cpu.cpp: minGRU / minLSTM

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward", &gru_forward, "GRU (reset after) forward over time");
  m.def("gru_backward", &gru_backward, "GRU (reset after) BPTT");
  m.def("elman_forward", &elman_forward, "Elman RNN forward over time");
  m.def("elman_backward", &elman_backward, "Elman RNN BPTT");
  register_minimal(m);
}
