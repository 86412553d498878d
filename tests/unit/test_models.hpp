// Small random RBMs and data sets shared by the numerical tests.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "io/dataset.hpp"
#include "model/params.hpp"

namespace rbm::test {

inline ParamBuffer random_params(RbmShape shape, double scale, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, float(scale));
    ParamBuffer p(shape);
    for (float& x : p.values) x = normal(gen);
    return p;
}

// Weights m / 64 with |m| <= max_m, biases m / 64 with |m| <= 96: with binary units
// every pre-activation is exact in float, whatever order a product sums in, so two
// implementations of a Gibbs chain must agree bit for bit.
inline ParamBuffer dyadic_params(RbmShape shape, int max_m, unsigned seed) {
    ParamBuffer p(shape);
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> w(-max_m, max_m), bias(-96, 96);
    for (std::size_t e = 0; e < shape.weight_count(); ++e) p.values[e] = float(w(gen)) / 64.0f;
    for (std::size_t e = shape.weight_count(); e < p.values.size(); ++e) p.values[e] = float(bias(gen)) / 64.0f;
    return p;
}

// The largest m for dyadic_params whose pre-activations spread about 1.5 (draws not forced).
inline int dyadic_spread(RbmShape shape) {
    const double n = double(shape.n_visible > shape.n_hidden ? shape.n_visible : shape.n_hidden);
    const int m = int(64 * 1.5 / (0.58 * std::sqrt(n / 2)) + 0.5);
    return m > 1 ? m : 1;
}

inline std::vector<float> random_binary_rows(std::size_t n, std::size_t cols, unsigned seed) {
    std::mt19937 gen(seed);
    std::bernoulli_distribution coin(0.5);
    std::vector<float> rows(n * cols);
    for (float& x : rows) x = coin(gen) ? 1.0f : 0.0f;
    return rows;
}

// A training shard holding `rows` [n, cols].
inline Dataset dataset_of(const std::vector<float>& rows, std::size_t cols) {
    Dataset d;
    d.source = "test";
    d.n_cols = cols;
    d.n_rows = rows.size() / cols;
    d.values = rows;
    return d;
}

}  // namespace rbm::test
