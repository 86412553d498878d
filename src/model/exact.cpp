// Enumeration-based reference math for small RBMs (see exact.hpp).
#include "model/exact.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/check.hpp"

namespace rbm::exact {

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

namespace {

double hidden_preactivation(const ParamBuffer& p, const float* v, std::size_t j) {
    double a = p.hbias()[j];
    for (std::size_t i = 0; i < p.shape.n_visible; ++i) a += double(v[i]) * p.W()[i * p.shape.n_hidden + j];
    return a;
}

double visible_preactivation(const ParamBuffer& p, const float* h, std::size_t i) {
    double a = p.vbias()[i];
    for (std::size_t j = 0; j < p.shape.n_hidden; ++j) a += double(h[j]) * p.W()[i * p.shape.n_hidden + j];
    return a;
}

// Free energy of a hidden state: -h.c - sum_i softplus(b_i + W[i, :].h).
double hidden_free_energy(const ParamBuffer& p, const float* h) {
    double f = 0;
    for (std::size_t j = 0; j < p.shape.n_hidden; ++j) f -= double(h[j]) * p.hbias()[j];
    for (std::size_t i = 0; i < p.shape.n_visible; ++i) f -= softplus(visible_preactivation(p, h, i));
    return f;
}

void state_from_bits(unsigned long bits, std::size_t n, std::vector<float>& out) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = float((bits >> i) & 1ul);
}

}  // namespace

double log_sum_exp(const std::vector<double>& terms) {
    if (terms.empty()) return -std::numeric_limits<double>::infinity();
    double top = *std::max_element(terms.begin(), terms.end());
    double s = 0;
    for (double t : terms) s += std::exp(t - top);
    return top + std::log(s);
}

double free_energy(const ParamBuffer& p, const float* v) {
    double f = 0;
    for (std::size_t i = 0; i < p.shape.n_visible; ++i) f -= double(v[i]) * p.vbias()[i];
    for (std::size_t j = 0; j < p.shape.n_hidden; ++j) f -= softplus(hidden_preactivation(p, v, j));
    return f;
}

std::vector<double> hidden_probs(const ParamBuffer& p, const float* v) {
    std::vector<double> out(p.shape.n_hidden);
    for (std::size_t j = 0; j < out.size(); ++j) out[j] = sigmoid(hidden_preactivation(p, v, j));
    return out;
}

std::vector<double> visible_probs(const ParamBuffer& p, const float* h) {
    std::vector<double> out(p.shape.n_visible);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = sigmoid(visible_preactivation(p, h, i));
    return out;
}

double log_partition(const ParamBuffer& p) {
    const bool over_hidden = p.shape.n_hidden <= p.shape.n_visible;
    const std::size_t n = over_hidden ? p.shape.n_hidden : p.shape.n_visible;
    RBM_CHECK(n <= 26, "exact log Z needs a layer of at most 26 units, the smaller has " << n);
    std::vector<double> terms(std::size_t(1) << n);
    std::vector<float> state;
    for (unsigned long bits = 0; bits < terms.size(); ++bits) {
        state_from_bits(bits, n, state);
        terms[bits] = over_hidden ? -hidden_free_energy(p, state.data()) : -free_energy(p, state.data());
    }
    return log_sum_exp(terms);
}

double mean_log_likelihood(const ParamBuffer& p, const float* rows, std::size_t n) {
    const double log_z = log_partition(p);
    double s = 0;
    for (std::size_t r = 0; r < n; ++r) s += -free_energy(p, rows + r * p.shape.n_visible) - log_z;
    return s / double(n);
}

namespace {
// Adds weight * (v h', v, h) to an accumulator in parameter layout.
void add_statistics(const ParamBuffer& p, const float* v, const std::vector<double>& h, double weight,
                    std::vector<double>& acc) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    for (std::size_t i = 0; i < nv; ++i)
        for (std::size_t j = 0; j < nh; ++j) acc[i * nh + j] += weight * v[i] * h[j];
    for (std::size_t i = 0; i < nv; ++i) acc[p.shape.vbias_offset() + i] += weight * v[i];
    for (std::size_t j = 0; j < nh; ++j) acc[p.shape.hbias_offset() + j] += weight * h[j];
}
}  // namespace

std::vector<double> model_expectations(const ParamBuffer& p) {
    const std::size_t nv = p.shape.n_visible;
    RBM_CHECK(nv <= 22, "model expectations enumerate the visible layer: at most 22 units, got " << nv);
    const double log_z = log_partition(p);
    std::vector<double> acc(p.shape.total(), 0.0);
    std::vector<float> v;
    for (unsigned long bits = 0; bits < (1ul << nv); ++bits) {
        state_from_bits(bits, nv, v);
        const double prob = std::exp(-free_energy(p, v.data()) - log_z);
        add_statistics(p, v.data(), hidden_probs(p, v.data()), prob, acc);
    }
    return acc;
}

std::vector<double> log_likelihood_gradient(const ParamBuffer& p, const float* rows, std::size_t n) {
    std::vector<double> grad(p.shape.total(), 0.0);
    for (std::size_t r = 0; r < n; ++r) {
        const float* v = rows + r * p.shape.n_visible;
        add_statistics(p, v, hidden_probs(p, v), 1.0 / double(n), grad);
    }
    const std::vector<double> model = model_expectations(p);
    for (std::size_t k = 0; k < grad.size(); ++k) grad[k] -= model[k];
    return grad;
}

double log_conditional_bit(const ParamBuffer& p, const float* v, std::size_t i) {
    std::vector<float> flipped(v, v + p.shape.n_visible);
    flipped[i] = 1.0f - flipped[i];
    return -softplus(-(free_energy(p, flipped.data()) - free_energy(p, v)));
}

}  // namespace rbm::exact
