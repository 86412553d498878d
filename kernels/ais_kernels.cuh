// Kernels of AIS and RAISE on the GPU (the operations of eval::AnnealingChains; the
// formulas are in src/eval/ais.hpp). Chain r draws from Philox keyed (seed, index[r],
// ais) with draw seed_index[r] << 4 | kind, exactly as the CPU chains do, so a chain's
// states agree with the CPU's except where a probability lies within rounding of its
// uniform draw. Rows are chains; matrices row-major.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace rbm::kernels {

// Per-chain Philox identity: key (seed, index[r], ais), draws numbered seed_index[r] << 4 | kind.
struct ChainKeys {
    const uint32_t* index = nullptr;
    const uint32_t* seed_index = nullptr;
    uint32_t seed = 0;
};

// x[r, i] = u < sigmoid(base_b[i]), u from draw kind `kind` at step 0: exact base-model samples.
void ais_sample_base(float* x, const double* base_b, std::size_t chains, std::size_t n_visible, ChainKeys keys,
                     uint32_t kind, cudaStream_t stream);

// a[r, j] += c[j];  vb[r] = sum_i [x[r, i] != 0] b_minus_base[i]  (a = x W from cuBLAS before).
void ais_finish_hidden_input(float* a, const float* hbias, const float* x, const double* b_minus_base, double* vb,
                             std::size_t chains, std::size_t n_visible, std::size_t n_hidden, cudaStream_t stream);

// acc[r] += (beta_to - beta_from) vb[r] + sum_j [softplus(beta_to a_rj) - softplus(beta_from a_rj)].
void ais_add_log_ratio(const float* a, const double* vb, double* acc, double beta_to, double beta_from,
                       std::size_t chains, std::size_t n_hidden, cudaStream_t stream);

// h[r, j] = u < sigmoid(beta a[r, j]), draw kind `kind` at counter `step`.
void ais_sample_hidden(const float* a, float* h, double beta, std::size_t chains, std::size_t n_hidden,
                       ChainKeys keys, uint32_t kind, uint64_t step, cudaStream_t stream);

// x[r, i] = u < sigmoid((1 - beta) base_b[i] + beta (vbias[i] + pre[r, i])), pre = h W'.
void ais_sample_visible(const float* pre, const float* vbias, const double* base_b, float* x, double beta,
                        std::size_t chains, std::size_t n_visible, ChainKeys keys, uint32_t kind, uint64_t step,
                        cudaStream_t stream);

}  // namespace rbm::kernels
