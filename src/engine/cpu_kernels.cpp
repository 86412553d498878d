// Fused elementwise loops of the CPU engine (see cpu_kernels.hpp).
#include "engine/cpu_kernels.hpp"

#include <cmath>

namespace rbm::cpu {

float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

float softplusf(float x) { return x > 0.0f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

void add_bias_sigmoid(const float* pre, const float* bias, float* prob, std::size_t rows,
                      std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float* in = pre + r * cols;
        float* out = prob + r * cols;
        for (std::size_t c = 0; c < cols; ++c) out[c] = sigmoidf(in[c] + bias[c]);
    }
}

void sample_bernoulli(const float* prob, float* sample, std::size_t count, const Stream& stream,
                      uint64_t step, uint32_t draw) {
    std::size_t e = 0;
    for (uint32_t block = 0; e < count; ++block) {
        const auto words = stream.block(step, draw, block);
        for (int w = 0; w < 4 && e < count; ++w, ++e)
            sample[e] = word_to_uniform(words.v[w]) < prob[e] ? 1.0f : 0.0f;
    }
}

void activate_and_sample(const float* pre, const float* bias, float* prob, float* sample,
                         std::size_t rows, std::size_t cols, const Stream& stream, uint64_t step,
                         uint32_t draw) {
    add_bias_sigmoid(pre, bias, prob, rows, cols);
    sample_bernoulli(prob, sample, rows * cols, stream, step, draw);
}

double sum_softplus(const float* pre, const float* bias, std::size_t rows, std::size_t cols) {
    double total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        float row_sum = 0;
        for (std::size_t c = 0; c < cols; ++c) row_sum += softplusf(pre[r * cols + c] + bias[c]);
        total += row_sum;
    }
    return total;
}

}  // namespace rbm::cpu
