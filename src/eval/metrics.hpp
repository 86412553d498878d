// Per-example measures of an RBM on binary data, and exact log Z by enumeration, as
// `rbm eval` computes them. All sums in double; matrix products in float (sgemm).
//
//   free energy      F(v) = -v.b - sum_j softplus(c_j + v.W[:, j])
//   pseudo-likelihood  PL(x) = sum_i log p(x_i | x_-i) over ALL n_visible bits (not the
//                    training monitor's one bit times n_visible), with the flip trick:
//                    flipping x_i moves a_j = c_j + x.W[:, j] by δ_j = s_i W[i, j], s_i = 1 - 2 x_i, so
//                    F(x') - F(x) = -s_i b_i - sum_j [softplus(a_j + δ_j) - softplus(a_j)],
//                    softplus(a + δ) - softplus(a) = log1p(σ(a) expm1(δ)),  and
//                    log p(x_i | x_-i) = log σ(F(x') - F(x)): O(n_visible n_hidden) per example.
//   reconstruction   -sum_i [x_i log r_i + (1 - x_i) log(1 - r_i)], r = σ(b + W σ(c + xW))
//                    (the mean-field reconstruction, as training monitors it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/params.hpp"

namespace rbm::eval {

struct DataSums {
    double free_energy = 0;          // sum of F(v)
    double pseudo_likelihood = 0;    // sum over examples of sum_i log p(x_i | x_-i)
    double reconstruction_xent = 0;  // sum over examples
    double examples = 0;
};

// Sums over `n` binary rows [n, n_visible]; the pseudo-likelihood only when asked.
DataSums data_sums(const ParamBuffer& p, const float* rows, std::size_t n, bool with_pseudo_likelihood);

// p(h_j = 1 | v) = σ(c_j + v.W[:, j]) of each row [n, n_visible] (any values in [0, 1]:
// mean-field features need not be binary), as [n, n_hidden].
std::vector<float> hidden_means(const ParamBuffer& p, const float* rows, std::size_t n);

// F(v) of each row.
std::vector<double> free_energies(const ParamBuffer& p, const float* rows, std::size_t n);

// Exact log Z by enumerating the smaller layer in Gray-code order (one unit flips per
// state, so a state costs O(n_visible + n_hidden) updates plus the softplus sum).
// The states are numbered 0 .. 2^n - 1 (n = enumerated_units); this returns the
// log-sum-exp over states [begin, end), so ranks can split the range.
std::size_t enumerated_units(const RbmShape& shape);
double log_partition_partial(const ParamBuffer& p, uint64_t begin, uint64_t end);
double log_partition_enumerated(const ParamBuffer& p);  // the whole range

}  // namespace rbm::eval
