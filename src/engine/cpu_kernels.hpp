// The CPU engine's elementwise passes. Each is one fused loop over a matrix (bias,
// sigmoid and Bernoulli sampling together) so a step touches each activation once;
// the Philox draws are the same ones the CUDA kernels make (random/streams.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "random/streams.hpp"

namespace rbm::cpu {

// pre[r, c] += bias[c]; prob = sigmoid(pre)  (pre may alias prob)
void add_bias_sigmoid(const float* pre, const float* bias, float* prob, std::size_t rows,
                      std::size_t cols);

// sample[e] = uniform(e) < prob[e] for the elements of a [rows, cols] matrix,
// element index e = r * cols + c of draw `draw` at counter `step`.
void sample_bernoulli(const float* prob, float* sample, std::size_t count, const Stream& stream,
                      uint64_t step, uint32_t draw);

// Both together: prob = sigmoid(pre + bias); sample ~ Bernoulli(prob).
void activate_and_sample(const float* pre, const float* bias, float* prob, float* sample,
                         std::size_t rows, std::size_t cols, const Stream& stream, uint64_t step,
                         uint32_t draw);

// Sum over rows of sum_c softplus(pre[r, c] + bias[c]).
double sum_softplus(const float* pre, const float* bias, std::size_t rows, std::size_t cols);

float sigmoidf(float x);
float softplusf(float x);

}  // namespace rbm::cpu
