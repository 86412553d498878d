// The CUDA engine's kernels, as host-callable launchers. Each fuses what the CPU
// engine's passes do (src/engine/cpu_kernels.hpp) and draws the same Philox numbers:
// element e of draw d at step s uses word e % 4 of block e / 4, counter
// {e / 4, d, s_lo, s_hi}, and a unit is on when word_to_uniform(word) < p.
// Kernels read the step counter from device memory (step_ptr), so a captured CUDA
// graph replays correctly as the counter advances on the device.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/gradient_update.hpp"
#include "random/streams.hpp"

namespace rbm::kernels {

// out[r, :] = shard[order[*cursor + r], :] for r < rows
void gather_rows(const float* shard, const uint32_t* order, const uint64_t* cursor, float* out,
                 std::size_t rows, std::size_t cols, cudaStream_t stream);

// prob = sigmoid(pre + bias) per row; when sample != nullptr also sample ~ Bernoulli(prob)
// with draw `draw` of `key` at step *step_ptr (+ step_offset).
void bias_sigmoid_sample(const float* pre, const float* bias, float* prob, float* sample, std::size_t rows,
                         std::size_t cols, Stream key, const uint64_t* step_ptr, uint32_t draw,
                         cudaStream_t stream);

// sample ~ Bernoulli(prob) for `count` elements.
void sample_bernoulli(const float* prob, float* sample, std::size_t count, Stream key, const uint64_t* step_ptr,
                      uint32_t draw, cudaStream_t stream);

// Rows [0, batch) of h scaled by 1/batch, rows [batch, batch + chains) by -1/chains.
void scale_rows(float* h, std::size_t batch, std::size_t chains, std::size_t cols, cudaStream_t stream);

// x = (v >= 0.5) for `count` elements.
void round_binary(const float* v, float* x, std::size_t count, cudaStream_t stream);

// sums[0] += sum over rows of n_visible * log sigmoid(F(x with bit i flipped) - F(x)),
// i = *step_ptr % n_visible; pre = x W (no bias). The flip moves pre by +-W[i, :].
void pseudo_likelihood(const float* pre, const float* x, const float* W, const float* vbias, const float* hbias,
                       std::size_t batch, std::size_t n_visible, std::size_t n_hidden, const uint64_t* step_ptr,
                       double* sums, cudaStream_t stream);

// sums[1] += sum over rows of sum_i softplus(a) - v a, a = pre_v + vbias; sums[2] += batch.
void reconstruction_xent(const float* pre_v, const float* vbias, const float* v, std::size_t batch,
                         std::size_t n_visible, double* sums, cudaStream_t stream);

// *sum += sum over rows of F(x) = -x.vbias - sum_j softplus(pre + hbias)
void free_energy(const float* pre, const float* x, const float* vbias, const float* hbias, std::size_t rows,
                 std::size_t n_visible, std::size_t n_hidden, double* sum, cudaStream_t stream);

// v = momentum v + lr (scale g - decay p [weights only]); p += v. With `nonfinite`, also
// *nonfinite = 1 where a new parameter is not finite: the step report's check, fused.
void sgd_update(float* params, float* velocity, const float* grad, std::size_t total, std::size_t n_weights,
                float lr, float momentum, float decay, float scale, int* nonfinite, cudaStream_t stream);

// The step's gradient formed and applied in one kernel (kernels/gradient_update.hpp).
void gradient_update(const fused::GradientUpdateArgs& args, cudaStream_t stream);

// avg += rate (scale x - avg): centering's moving hidden offset
void moving_average(float* avg, const float* x, float rate, float scale, std::size_t n, cudaStream_t stream);

// *step += 1; *cursor += batch  (the next step's counters, advanced on the device);
// no cursor: the step alone (rbm sample's Gibbs steps)
void advance_step(uint64_t* step, uint64_t* cursor, std::size_t batch, cudaStream_t stream);

// *flag = 1 if any of the n values is not finite (flag must be zeroed first)
void find_nonfinite(const float* values, std::size_t n, int* flag, cudaStream_t stream);

// A step's report as the host reads it: the monitoring sums and the non-finite flag.
struct StepReportCopy {
    double sums[3];
    int nonfinite;
};

// The step report in one kernel: sums and flag copied to `out` (mapped host memory),
// then both reset for the next step.
void copy_step_report(double* sums, int* flag, StepReportCopy* out, cudaStream_t stream);

}  // namespace rbm::kernels
