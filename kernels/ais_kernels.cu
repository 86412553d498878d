// AIS kernels (see ais_kernels.cuh). Each mirrors one loop of CpuAnnealingChains in
// src/eval/ais.cpp, with the same arithmetic in the same precision: products in float
// from cuBLAS, log-weights and the visible pre-activation in double.
#include "kernels/ais_kernels.cuh"

#include "engine/cuda/cuda_check.hpp"
#include "kernels/device_math.cuh"
#include "random/streams.hpp"

namespace rbm::kernels {
namespace {

__device__ __forceinline__ Stream chain_stream(const ChainKeys& keys, std::size_t r) {
    return Stream::make(keys.seed, keys.index[r], Purpose::ais);
}
__device__ __forceinline__ uint32_t chain_draw(const ChainKeys& keys, std::size_t r, uint32_t kind) {
    return (keys.seed_index[r] << 4) | kind;
}

// One thread per Philox block: units 4t .. 4t+3 of a row of `cols`.
__global__ void sample_base_kernel(float* x, const double* base_b, std::size_t chains, std::size_t nv,
                                   ChainKeys keys, uint32_t kind) {
    const std::size_t per_row = (nv + 3) / 4, t = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= chains * per_row) return;
    const std::size_t r = t / per_row, i0 = (t % per_row) * 4;
    const auto u = chain_stream(keys, r).block(0, chain_draw(keys, r, kind), uint32_t(i0 >> 2));
    for (int q = 0; q < 4 && i0 + q < nv; ++q) {
        const float p = float(1.0 / (1.0 + exp(-base_b[i0 + q])));
        x[r * nv + i0 + q] = word_to_uniform(u.v[q]) < p ? 1.0f : 0.0f;
    }
}

__global__ void add_bias_kernel(float* a, const float* bias, std::size_t rows, std::size_t cols) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < rows * cols) a[e] += bias[e % cols];
}

// One block per chain.
__global__ void masked_sum_kernel(const float* x, const double* weights, double* out, std::size_t nv) {
    const float* row = x + std::size_t(blockIdx.x) * nv;
    double s = 0;
    for (std::size_t i = threadIdx.x; i < nv; i += blockDim.x)
        if (row[i] != 0.0f) s += weights[i];
    s = block_sum(s);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// One block per chain. softplus(x0 + δ) - softplus(x0) = log1p(σ(x0) expm1(δ)), with the
// plain difference where 1 + σ expm1(δ) cancels or expm1(δ) overflows, as on the CPU.
__global__ void log_ratio_kernel(const float* a, const double* vb, double* acc, double beta_to, double beta_from,
                                 std::size_t nh) {
    const float* row = a + std::size_t(blockIdx.x) * nh;
    const double d_beta = beta_to - beta_from;
    double s = 0;
    for (std::size_t j = threadIdx.x; j < nh; j += blockDim.x) {
        const double aj = row[j], x0 = beta_from * aj;
        const double y = (1.0 / (1.0 + exp(-x0))) * expm1(d_beta * aj);
        s += isfinite(y) && y > -0.5 ? log1p(y) : softplus_dev(beta_to * aj) - softplus_dev(x0);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) acc[blockIdx.x] += s + d_beta * vb[blockIdx.x];
}

__global__ void sample_hidden_kernel(const float* a, float* h, double beta, std::size_t chains, std::size_t nh,
                                     ChainKeys keys, uint32_t kind, uint64_t step) {
    const std::size_t per_row = (nh + 3) / 4, t = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= chains * per_row) return;
    const std::size_t r = t / per_row, j0 = (t % per_row) * 4;
    const auto u = chain_stream(keys, r).block(step, chain_draw(keys, r, kind), uint32_t(j0 >> 2));
    for (int q = 0; q < 4 && j0 + q < nh; ++q) {
        const std::size_t e = r * nh + j0 + q;
        h[e] = word_to_uniform(u.v[q]) < sigmoidf_dev(float(beta * a[e])) ? 1.0f : 0.0f;
    }
}

__global__ void sample_visible_kernel(const float* pre, const float* vbias, const double* base_b, float* x,
                                      double beta, std::size_t chains, std::size_t nv, ChainKeys keys,
                                      uint32_t kind, uint64_t step) {
    const std::size_t per_row = (nv + 3) / 4, t = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= chains * per_row) return;
    const std::size_t r = t / per_row, i0 = (t % per_row) * 4;
    const auto u = chain_stream(keys, r).block(step, chain_draw(keys, r, kind), uint32_t(i0 >> 2));
    for (int q = 0; q < 4 && i0 + q < nv; ++q) {
        const std::size_t i = i0 + q, e = r * nv + i;
        const double z = (1.0 - beta) * base_b[i] + beta * (double(vbias[i]) + double(pre[e]));
        x[e] = word_to_uniform(u.v[q]) < sigmoidf_dev(float(z)) ? 1.0f : 0.0f;
    }
}

}  // namespace

void ais_sample_base(float* x, const double* base_b, std::size_t chains, std::size_t n_visible, ChainKeys keys,
                     uint32_t kind, cudaStream_t stream) {
    sample_base_kernel<<<blocks_for(chains * ((n_visible + 3) / 4)), kThreads, 0, stream>>>(x, base_b, chains, n_visible,
                                                                                   keys, kind);
    RBM_CUDA_LAUNCHED();
}

void ais_finish_hidden_input(float* a, const float* hbias, const float* x, const double* b_minus_base, double* vb,
                             std::size_t chains, std::size_t n_visible, std::size_t n_hidden, cudaStream_t stream) {
    add_bias_kernel<<<blocks_for(chains * n_hidden), kThreads, 0, stream>>>(a, hbias, chains, n_hidden);
    RBM_CUDA_LAUNCHED();
    masked_sum_kernel<<<unsigned(chains), kThreads, 0, stream>>>(x, b_minus_base, vb, n_visible);
    RBM_CUDA_LAUNCHED();
}

void ais_add_log_ratio(const float* a, const double* vb, double* acc, double beta_to, double beta_from,
                       std::size_t chains, std::size_t n_hidden, cudaStream_t stream) {
    log_ratio_kernel<<<unsigned(chains), kThreads, 0, stream>>>(a, vb, acc, beta_to, beta_from, n_hidden);
    RBM_CUDA_LAUNCHED();
}

void ais_sample_hidden(const float* a, float* h, double beta, std::size_t chains, std::size_t n_hidden,
                       ChainKeys keys, uint32_t kind, uint64_t step, cudaStream_t stream) {
    sample_hidden_kernel<<<blocks_for(chains * ((n_hidden + 3) / 4)), kThreads, 0, stream>>>(a, h, beta, chains, n_hidden,
                                                                                    keys, kind, step);
    RBM_CUDA_LAUNCHED();
}

void ais_sample_visible(const float* pre, const float* vbias, const double* base_b, float* x, double beta,
                        std::size_t chains, std::size_t n_visible, ChainKeys keys, uint32_t kind, uint64_t step,
                        cudaStream_t stream) {
    sample_visible_kernel<<<blocks_for(chains * ((n_visible + 3) / 4)), kThreads, 0, stream>>>(
        pre, vbias, base_b, x, beta, chains, n_visible, keys, kind, step);
    RBM_CUDA_LAUNCHED();
}

}  // namespace rbm::kernels
