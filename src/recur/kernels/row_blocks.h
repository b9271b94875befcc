// Shared by recur's CPU kernels: the batch rows [0, B) split into one contiguous block per
// thread. Sequences in a batch are independent, so each block owns its rows (the blocks
// write disjoint memory) and `block` indexes per-block partial sums (bias gradients), which
// are added up after the loop: race-free and the same result for a given thread count.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace recur {

inline int64_t row_blocks(int64_t B) {
  return std::max<int64_t>(1, std::min<int64_t>(B, at::get_num_threads()));
}

// Calls f(block, b0, b1) for each of `blocks` blocks of [0, B), in parallel.
template <typename F>
void for_row_blocks(int64_t B, int64_t blocks, const F& f) {
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) f(k, k * B / blocks, (k + 1) * B / blocks);
  });
}

}  // namespace recur
