// CUDA kernels of the GPU engine (see rbm_kernels.cuh). Elementwise work is fused so
// each activation is read and written once; reductions accumulate in double and
// finish with one atomicAdd per block.
#include "kernels/rbm_kernels.cuh"

#include "engine/cuda/cuda_check.hpp"
#include "kernels/device_math.cuh"

namespace rbm::kernels {
namespace {

__global__ void gather_rows_kernel(const float* shard, const uint32_t* order, const uint64_t* cursor, float* out,
                                   std::size_t rows, std::size_t cols) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= rows * cols) return;
    const std::size_t r = e / cols, c = e % cols;
    out[e] = shard[std::size_t(order[*cursor + r]) * cols + c];
}

// One thread per Philox block: elements 4t .. 4t+3 of the row-major matrix.
__global__ void bias_sigmoid_sample_kernel(const float* pre, const float* bias, float* prob, float* sample,
                                           std::size_t rows, std::size_t cols, Stream key,
                                           const uint64_t* step_ptr, uint32_t draw) {
    const std::size_t block = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const std::size_t count = rows * cols, first = block * 4;
    if (first >= count) return;
    r123::Philox4x32::ctr_type words;
    if (sample) words = key.block(*step_ptr, draw, uint32_t(block));
    for (int w = 0; w < 4; ++w) {
        const std::size_t e = first + w;
        if (e >= count) break;
        const float p = sigmoidf_dev(pre[e] + bias[e % cols]);
        prob[e] = p;
        if (sample) sample[e] = word_to_uniform(words.v[w]) < p ? 1.0f : 0.0f;
    }
}

__global__ void sample_kernel(const float* prob, float* sample, std::size_t count, Stream key,
                              const uint64_t* step_ptr, uint32_t draw) {
    const std::size_t block = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const std::size_t first = block * 4;
    if (first >= count) return;
    const auto words = key.block(*step_ptr, draw, uint32_t(block));
    for (int w = 0; w < 4 && first + w < count; ++w)
        sample[first + w] = word_to_uniform(words.v[w]) < prob[first + w] ? 1.0f : 0.0f;
}

__global__ void scale_rows_kernel(float* h, std::size_t batch, std::size_t chains, std::size_t cols) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= (batch + chains) * cols) return;
    h[e] *= (e / cols) < batch ? 1.0f / float(batch) : -1.0f / float(chains);
}

__global__ void round_kernel(const float* v, float* x, std::size_t count) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < count) x[e] = v[e] >= 0.5f ? 1.0f : 0.0f;
}

// One block per example.
__global__ void pseudo_likelihood_kernel(const float* pre, const float* x, const float* W, const float* vbias,
                                         const float* hbias, std::size_t n_visible, std::size_t n_hidden,
                                         const uint64_t* step_ptr, double* sums) {
    const std::size_t r = blockIdx.x, i = std::size_t(*step_ptr % n_visible);
    const float sign = 1.0f - 2.0f * x[r * n_visible + i];
    const float* pr = pre + r * n_hidden;
    const float* wi = W + i * n_hidden;
    double acc = 0.0;
    for (std::size_t j = threadIdx.x; j < n_hidden; j += blockDim.x) {
        const float a = pr[j] + hbias[j];
        acc += double(softplusf_dev(a + sign * wi[j]) - softplusf_dev(a));
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
        const double fe_diff = -double(sign) * vbias[i] - acc;
        atomicAdd(&sums[0], -double(n_visible) * softplus_dev(-fe_diff));
    }
}

// One block per example.
__global__ void reconstruction_kernel(const float* pre_v, const float* vbias, const float* v, std::size_t n_visible,
                                      double* sums) {
    const std::size_t r = blockIdx.x;
    double acc = 0.0;
    for (std::size_t i = threadIdx.x; i < n_visible; i += blockDim.x) {
        const float a = pre_v[r * n_visible + i] + vbias[i];
        acc += double(softplusf_dev(a) - v[r * n_visible + i] * a);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
        atomicAdd(&sums[1], acc);
        atomicAdd(&sums[2], 1.0);
    }
}

// One block per row.
__global__ void free_energy_kernel(const float* pre, const float* x, const float* vbias, const float* hbias,
                                   std::size_t n_visible, std::size_t n_hidden, double* sum) {
    const std::size_t r = blockIdx.x;
    double acc = 0.0;
    for (std::size_t j = threadIdx.x; j < n_hidden; j += blockDim.x) acc -= softplusf_dev(pre[r * n_hidden + j] + hbias[j]);
    for (std::size_t i = threadIdx.x; i < n_visible; i += blockDim.x) acc -= double(x[r * n_visible + i]) * vbias[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(sum, acc);
}

__global__ void sgd_kernel(float* p, float* v, const float* g, std::size_t total, std::size_t n_weights, float lr,
                           float momentum, float decay, float scale, int* nonfinite) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < total)
        fused::apply_update_rule(p[e], v[e], g[e], lr, momentum, e < n_weights ? decay : 0.0f, scale, nonfinite);
}

__global__ void gradient_update_kernel(fused::GradientUpdateArgs a, std::size_t threads) {
    const std::size_t index = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < threads) fused::gradient_update_at(a, index);
}

__global__ void moving_average_kernel(float* avg, const float* x, float rate, float scale, std::size_t n) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < n) avg[e] += rate * (scale * x[e] - avg[e]);
}

__global__ void advance_kernel(uint64_t* step, uint64_t* cursor, std::size_t batch) {
    *step += 1;
    if (cursor) *cursor += batch;
}

__global__ void nonfinite_kernel(const float* values, std::size_t n, int* flag) {
    const std::size_t e = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < n && !isfinite(values[e])) *flag = 1;
}

__global__ void step_report_kernel(double* sums, int* flag, StepReportCopy* out) {
    for (int s = 0; s < 3; ++s) {
        out->sums[s] = sums[s];
        sums[s] = 0.0;
    }
    out->nonfinite = *flag;
    *flag = 0;
}

}  // namespace

void gather_rows(const float* shard, const uint32_t* order, const uint64_t* cursor, float* out, std::size_t rows,
                 std::size_t cols, cudaStream_t stream) {
    gather_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(shard, order, cursor, out, rows, cols);
    RBM_CUDA_LAUNCHED();
}

void bias_sigmoid_sample(const float* pre, const float* bias, float* prob, float* sample, std::size_t rows,
                         std::size_t cols, Stream key, const uint64_t* step_ptr, uint32_t draw, cudaStream_t stream) {
    bias_sigmoid_sample_kernel<<<blocks_for(rows * cols, 4), kThreads, 0, stream>>>(pre, bias, prob, sample, rows,
                                                                                   cols, key, step_ptr, draw);
    RBM_CUDA_LAUNCHED();
}

void sample_bernoulli(const float* prob, float* sample, std::size_t count, Stream key, const uint64_t* step_ptr,
                      uint32_t draw, cudaStream_t stream) {
    sample_kernel<<<blocks_for(count, 4), kThreads, 0, stream>>>(prob, sample, count, key, step_ptr, draw);
    RBM_CUDA_LAUNCHED();
}

void scale_rows(float* h, std::size_t batch, std::size_t chains, std::size_t cols, cudaStream_t stream) {
    scale_rows_kernel<<<blocks_for((batch + chains) * cols), kThreads, 0, stream>>>(h, batch, chains, cols);
    RBM_CUDA_LAUNCHED();
}

void round_binary(const float* v, float* x, std::size_t count, cudaStream_t stream) {
    round_kernel<<<blocks_for(count), kThreads, 0, stream>>>(v, x, count);
    RBM_CUDA_LAUNCHED();
}

void pseudo_likelihood(const float* pre, const float* x, const float* W, const float* vbias, const float* hbias,
                       std::size_t batch, std::size_t n_visible, std::size_t n_hidden, const uint64_t* step_ptr,
                       double* sums, cudaStream_t stream) {
    pseudo_likelihood_kernel<<<unsigned(batch), kThreads, 0, stream>>>(pre, x, W, vbias, hbias, n_visible, n_hidden,
                                                                       step_ptr, sums);
    RBM_CUDA_LAUNCHED();
}

void reconstruction_xent(const float* pre_v, const float* vbias, const float* v, std::size_t batch,
                         std::size_t n_visible, double* sums, cudaStream_t stream) {
    reconstruction_kernel<<<unsigned(batch), kThreads, 0, stream>>>(pre_v, vbias, v, n_visible, sums);
    RBM_CUDA_LAUNCHED();
}

void free_energy(const float* pre, const float* x, const float* vbias, const float* hbias, std::size_t rows,
                 std::size_t n_visible, std::size_t n_hidden, double* sum, cudaStream_t stream) {
    if (rows == 0) return;
    free_energy_kernel<<<unsigned(rows), kThreads, 0, stream>>>(pre, x, vbias, hbias, n_visible, n_hidden, sum);
    RBM_CUDA_LAUNCHED();
}

void gradient_update(const fused::GradientUpdateArgs& args, cudaStream_t stream) {
    const std::size_t threads = fused::gradient_update_threads(args);
    gradient_update_kernel<<<blocks_for(threads), kThreads, 0, stream>>>(args, threads);
    RBM_CUDA_LAUNCHED();
}

void moving_average(float* avg, const float* x, float rate, float scale, std::size_t n, cudaStream_t stream) {
    moving_average_kernel<<<blocks_for(n), kThreads, 0, stream>>>(avg, x, rate, scale, n);
    RBM_CUDA_LAUNCHED();
}

void sgd_update(float* params, float* velocity, const float* grad, std::size_t total, std::size_t n_weights, float lr,
                float momentum, float decay, float scale, int* nonfinite, cudaStream_t stream) {
    sgd_kernel<<<blocks_for(total), kThreads, 0, stream>>>(params, velocity, grad, total, n_weights, lr, momentum,
                                                           decay, scale, nonfinite);
    RBM_CUDA_LAUNCHED();
}

void advance_step(uint64_t* step, uint64_t* cursor, std::size_t batch, cudaStream_t stream) {
    advance_kernel<<<1, 1, 0, stream>>>(step, cursor, batch);
    RBM_CUDA_LAUNCHED();
}

void find_nonfinite(const float* values, std::size_t n, int* flag, cudaStream_t stream) {
    nonfinite_kernel<<<blocks_for(n), kThreads, 0, stream>>>(values, n, flag);
    RBM_CUDA_LAUNCHED();
}

void copy_step_report(double* sums, int* flag, StepReportCopy* out, cudaStream_t stream) {
    step_report_kernel<<<1, 1, 0, stream>>>(sums, flag, out);
    RBM_CUDA_LAUNCHED();
}

}  // namespace rbm::kernels
