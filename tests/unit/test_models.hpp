// Small random RBMs and data sets shared by the numerical tests.
#pragma once

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
