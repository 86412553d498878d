// Reference formulas for a Bernoulli-Bernoulli RBM, in double precision and by
// enumeration where a sum over states is needed. They are slow and obviously right:
// the engines, the pseudo-likelihood shortcut and AIS are all tested against them.
//
// Energy E(v, h) = -v.b - h.c - v'Wh;  free energy F(v) = -v.b - sum_j softplus(c_j + v.W[:, j]).
#pragma once

#include <cstddef>
#include <vector>

#include "model/params.hpp"

namespace rbm::exact {

double softplus(double x);  // log(1 + e^x), stable
double log_sum_exp(const std::vector<double>& terms);  // log sum e^t, stable; -inf for none
double sigmoid(double x);

double free_energy(const ParamBuffer& p, const float* v);
std::vector<double> hidden_probs(const ParamBuffer& p, const float* v);  // p(h_j = 1 | v)
std::vector<double> visible_probs(const ParamBuffer& p, const float* h); // p(v_i = 1 | h)

// log Z by enumerating the smaller layer (2^min(n_visible, n_hidden) terms; at most 2^26).
double log_partition(const ParamBuffer& p);

// Mean log-likelihood of rows [n, n_visible] (binary) under the model.
double mean_log_likelihood(const ParamBuffer& p, const float* rows, std::size_t n);

// Gradient of the mean log-likelihood, in parameter layout [W | vbias | hbias]:
// <v h>_data - <v h>_model, with the model's expectation by enumerating the visible layer.
std::vector<double> log_likelihood_gradient(const ParamBuffer& p, const float* rows, std::size_t n);

// log p(v_i | v_-i) = log sigmoid(F(v with bit i flipped) - F(v)), from two free energies.
double log_conditional_bit(const ParamBuffer& p, const float* v, std::size_t i);

// The model's expectation E[v h'] etc. in parameter layout, by enumerating visible states.
std::vector<double> model_expectations(const ParamBuffer& p);

}  // namespace rbm::exact
