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
std::vector<Tensor> gru_forward(const Tensor& xw, const Tensor& h0, const Tensor& mask,
                                const Tensor& w_hh, const Tensor& b_hh) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::NoGradGuard no_grad;
  const auto T = xw.size(0), B = xw.size(1), H = h0.size(1);
  Tensor hs = at::empty({T, B, H}, xw.options());
  Tensor saved = at::empty({T, B, 4 * H}, xw.options());
  Tensor gh = at::empty({B, 3 * H}, xw.options());
  Tensor h_new = at::empty({B, H}, xw.options());
  Tensor h = h0;
  for (int64_t t = 0; t < T; ++t) {
    hidden_transform(h, w_hh, b_hh, gh);
    Tensor x_t = xw[t];
    Tensor s = saved[t];
    Tensor rz = s.narrow(1, 0, 2 * H), n = s.narrow(1, 2 * H, H), hn = s.narrow(1, 3 * H, H);
    at::add_out(rz, x_t.narrow(1, 0, 2 * H), gh.narrow(1, 0, 2 * H));
    rz.sigmoid_();
    Tensor r = s.narrow(1, 0, H), z = s.narrow(1, H, H);
    hn.copy_(gh.narrow(1, 2 * H, H));
    at::addcmul_out(n, x_t.narrow(1, 2 * H, H), r, hn);
    n.tanh_();
    // h' = n + z ⊙ (h − n)
    at::sub_out(h_new, h, n);
    Tensor h_t = hs[t];
    at::addcmul_out(h_t, n, z, h_new);
    if (mask.defined() && mask.numel() > 0) {  // h_t = h + m ⊙ (h' − h)
      at::sub_out(h_new, h_t, h);
      at::addcmul_out(h_t, h, mask[t], h_new);
    }
    h = h_t;
  }
  return {hs, saved};
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
  Tensor dh_new = at::empty({B, H}, hs.options());
  Tensor tmp = at::empty({B, H}, hs.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    dh.add_(grad_hs[t]);
    Tensor h_prev = t > 0 ? hs[t - 1] : h0;
    Tensor s = saved[t];
    Tensor r = s.narrow(1, 0, H), z = s.narrow(1, H, H), n = s.narrow(1, 2 * H, H),
           hn = s.narrow(1, 3 * H, H);
    Tensor gx = grad_xw[t], gh = dgh[t];
    Tensor dr_pre = gx.narrow(1, 0, H), dz_pre = gx.narrow(1, H, H),
           dn_pre = gx.narrow(1, 2 * H, H), dhn = gh.narrow(1, 2 * H, H);
    if (masked) {
      at::mul_out(dh_new, dh, mask[t]);          // through the cell
      dh.sub_(dh_new);                           // carried past a padded step
    } else {
      dh_new.copy_(dh);
      dh.zero_();
    }
    // dz = dh' ⊙ (h_{t−1} − n) ⊙ z(1 − z)
    at::sub_out(tmp, h_prev, n);
    at::mul_out(dz_pre, dh_new, tmp);
    at::mul_out(tmp, z, z);
    at::sub_out(tmp, z, tmp);
    dz_pre.mul_(tmp);
    // dn_pre = dh' ⊙ (1 − z) ⊙ (1 − n²)
    at::rsub_out(tmp, z, 1);
    at::mul_out(dn_pre, dh_new, tmp);
    at::mul_out(tmp, n, n);
    at::rsub_out(tmp, tmp, 1);
    dn_pre.mul_(tmp);
    // dhn = dn_pre ⊙ r;  dr_pre = dn_pre ⊙ hn ⊙ r(1 − r)
    at::mul_out(dhn, dn_pre, r);
    at::mul_out(dr_pre, dn_pre, hn);
    at::mul_out(tmp, r, r);
    at::sub_out(tmp, r, tmp);
    dr_pre.mul_(tmp);
    gh.narrow(1, 0, 2 * H).copy_(gx.narrow(1, 0, 2 * H));
    // dh_{t−1} = carried + dh' ⊙ z + dgh W_hh
    dh.addcmul_(dh_new, z);
    dh.addmm_(gh, w_hh);
  }
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
  Tensor dh_new = at::empty({B, H}, hs.options());
  Tensor tmp = at::empty({B, H}, hs.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    dh.add_(grad_hs[t]);
    Tensor h_t = hs[t];
    Tensor dpre = grad_xw[t];
    if (masked) {
      at::mul_out(dh_new, dh, mask[t]);
      dh.sub_(dh_new);
    } else {
      dh_new.copy_(dh);
      dh.zero_();
    }
    // f'(pre) from the output: tanh 1 − h², relu [h > 0], sigmoid h(1 − h). At padded
    // steps h_t is h_{t−1}, but there dh' is 0, so the value does not matter.
    switch (activation) {
      case kTanh: at::mul_out(tmp, h_t, h_t); at::rsub_out(tmp, tmp, 1); break;
      case kRelu: at::gt_out(tmp, h_t, 0); break;
      default: at::mul_out(tmp, h_t, h_t); at::sub_out(tmp, h_t, tmp); break;
    }
    at::mul_out(dpre, dh_new, tmp);
    dh.addmm_(dpre, w_hh);
  }
  auto weights = recurrent_weight_grads(grad_xw, previous_states(h0, hs), has_bias);
  return {grad_xw, dh, weights[0], weights[1]};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward", &gru_forward, "GRU (reset after) forward over time");
  m.def("gru_backward", &gru_backward, "GRU (reset after) BPTT");
  m.def("elman_forward", &elman_forward, "Elman RNN forward over time");
  m.def("elman_backward", &elman_backward, "Elman RNN BPTT");
}
