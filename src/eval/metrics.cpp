// Data measures and exact log Z for `rbm eval` (formulas: metrics.hpp).
#include "eval/metrics.hpp"
#include "eval/series.hpp"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "util/check.hpp"

namespace rbm::eval {
namespace {

inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

constexpr std::size_t kChunk = 256;  // rows per sgemm

// Row-major C[m, n] = A[m, k] op(B) with op(B) [k, n].
void gemm(bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f,
                a, int(k), b, int(trans_b ? k : n), 0.0f, c, int(n));
}

// Streaming log-sum-exp.
struct LogSumExp {
    double top = -std::numeric_limits<double>::infinity(), sum = 0;
    void add(double t) {
        if (t > top) {
            sum = sum * std::exp(top - t) + 1.0;
            top = t;
        } else {
            sum += std::exp(t - top);
        }
    }
    double value() const { return sum > 0 ? top + std::log(sum) : top; }
};

// a = c + x W and mean_h = σ(a) of m rows x [m, n_visible].
void hidden_activations(const ParamBuffer& p, const float* x, std::size_t m, float* a, float* mean_h) {
    const std::size_t nh = p.shape.n_hidden;
    gemm(false, m, nh, p.shape.n_visible, x, p.W(), a);
    for (std::size_t e = 0; e < m * nh; ++e) {
        a[e] += p.hbias()[e % nh];
        mean_h[e] = float(sigmoid(a[e]));
    }
}

}  // namespace

std::vector<float> hidden_means(const ParamBuffer& p, const float* rows, std::size_t n) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    std::vector<float> out(n * nh), a(kChunk * nh);
    for (std::size_t r0 = 0; r0 < n; r0 += kChunk)
        hidden_activations(p, rows + r0 * nv, std::min(kChunk, n - r0), a.data(), out.data() + r0 * nh);
    return out;
}

std::vector<double> free_energies(const ParamBuffer& p, const float* rows, std::size_t n) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    std::vector<double> out(n);
    std::vector<float> a(kChunk * nh);
    for (std::size_t r0 = 0; r0 < n; r0 += kChunk) {
        const std::size_t m = std::min(kChunk, n - r0);
        gemm(false, m, nh, nv, rows + r0 * nv, p.W(), a.data());
        for (std::size_t r = 0; r < m; ++r) {
            const float* v = rows + (r0 + r) * nv;
            double f = 0;
            for (std::size_t i = 0; i < nv; ++i) f -= double(v[i]) * p.vbias()[i];
            for (std::size_t j = 0; j < nh; ++j) f -= softplus(double(a[r * nh + j]) + p.hbias()[j]);
            out[r0 + r] = f;
        }
    }
    return out;
}

namespace {

// expm1(+W) and expm1(-W), once per call in double: the flip of bit i adds s_i W[i, :].
struct FlipFactors {
    std::vector<double> plus, minus;
    FlipFactors() = default;
    explicit FlipFactors(const ParamBuffer& p) : plus(p.shape.n_visible * p.shape.n_hidden), minus(plus.size()) {
        for (std::size_t e = 0; e < plus.size(); ++e) {
            plus[e] = std::expm1(double(p.W()[e]));
            minus[e] = std::expm1(-double(p.W()[e]));
        }
    }
};

struct PseudoLikelihoodScratch {
    std::vector<double> pre, sig, sp;  // a_j, σ(a_j), softplus(a_j) of one row
    explicit PseudoLikelihoodScratch(std::size_t nh) : pre(nh), sig(nh), sp(nh) {}
};

// sum_i log p(x_i | x_-i) of one row x, whose hidden pre-activations are a (with c).
double pseudo_likelihood_of(const ParamBuffer& p, const float* x, const float* a, const FlipFactors& flips,
                            PseudoLikelihoodScratch& t) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    for (std::size_t j = 0; j < nh; ++j) {
        t.pre[j] = a[j];
        t.sig[j] = sigmoid(t.pre[j]);
        t.sp[j] = softplus(t.pre[j]);
    }
    double pl = 0;
    for (std::size_t i = 0; i < nv; ++i) {
        const bool on = x[i] != 0.0f;
        const double s = on ? -1.0 : 1.0;
        const double* em = (on ? flips.minus.data() : flips.plus.data()) + i * nh;
        const float* w = p.W() + i * nh;
        double d = 0;  // sum_j softplus(a_j + s W_ij) - softplus(a_j)
        for (std::size_t j = 0; j < nh; ++j) {
            const double y = t.sig[j] * em[j];
            d += log1p_of_step_is_exact(y) ? log1p_series(y) : softplus(t.pre[j] + s * double(w[j])) - t.sp[j];
        }
        // log p(x_i | x_-i) = log σ(F(x') - F(x)) = -softplus(s_i b_i + d)
        pl -= softplus(s * double(p.vbias()[i]) + d);
    }
    return pl;
}

}  // namespace

DataSums data_sums(const ParamBuffer& p, const float* rows, std::size_t n, bool with_pseudo_likelihood) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    DataSums sums;
    sums.examples = double(n);
    for (double f : free_energies(p, rows, n)) sums.free_energy += f;

    const FlipFactors flips = with_pseudo_likelihood ? FlipFactors(p) : FlipFactors();
    PseudoLikelihoodScratch scratch(nh);
    std::vector<float> a(kChunk * nh), mean_h(kChunk * nh), pre_v(kChunk * nv);
    for (std::size_t r0 = 0; r0 < n; r0 += kChunk) {
        const std::size_t m = std::min(kChunk, n - r0);
        const float* x0 = rows + r0 * nv;
        hidden_activations(p, x0, m, a.data(), mean_h.data());
        // Mean-field reconstruction r = σ(b + W p(h | x)); cross-entropy softplus(z) - x z.
        gemm(true, m, nv, nh, mean_h.data(), p.W(), pre_v.data());
        for (std::size_t r = 0; r < m; ++r) {
            const float* x = x0 + r * nv;
            double xent = 0;
            for (std::size_t i = 0; i < nv; ++i) {
                const double z = double(pre_v[r * nv + i]) + p.vbias()[i];
                xent += softplus(z) - double(x[i]) * z;
            }
            sums.reconstruction_xent += xent;
        }
        if (!with_pseudo_likelihood) continue;
        for (std::size_t r = 0; r < m; ++r)
            sums.pseudo_likelihood += pseudo_likelihood_of(p, x0 + r * nv, a.data() + r * nh, flips, scratch);
    }
    return sums;
}

std::size_t enumerated_units(const RbmShape& shape) { return std::min(shape.n_visible, shape.n_hidden); }

double log_partition_partial(const ParamBuffer& p, uint64_t begin, uint64_t end) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    const bool over_hidden = nh <= nv;
    const std::size_t n = over_hidden ? nh : nv;   // enumerated units
    const std::size_t m = over_hidden ? nv : nh;   // summed out analytically
    RBM_CHECK(n <= 40, "cannot enumerate 2^" << n << " states");
    RBM_CHECK(begin <= end && end <= (uint64_t(1) << n), "state range out of bounds");
    if (begin == end) return -std::numeric_limits<double>::infinity();
    // rows[u] = the couplings of enumerated unit u to the m others; own[u] its bias; other[k] theirs.
    std::vector<double> rows(n * m), own(n), other(m);
    for (std::size_t u = 0; u < n; ++u) {
        own[u] = over_hidden ? p.hbias()[u] : p.vbias()[u];
        for (std::size_t k = 0; k < m; ++k)
            rows[u * m + k] = over_hidden ? p.W()[k * nh + u] : p.W()[u * nh + k];
    }
    for (std::size_t k = 0; k < m; ++k) other[k] = over_hidden ? p.vbias()[k] : p.hbias()[k];
    // State of Gray index g: bits of g ^ (g >> 1). log f(s) = s.own + sum_k softplus(other_k + s.rows[:, k]).
    auto gray = [](uint64_t g) { return g ^ (g >> 1); };
    const uint64_t first = gray(begin);
    std::vector<double> pre(other);
    double lin = 0;
    for (std::size_t u = 0; u < n; ++u)
        if ((first >> u) & 1) {
            lin += own[u];
            for (std::size_t k = 0; k < m; ++k) pre[k] += rows[u * m + k];
        }
    uint64_t state = first;
    LogSumExp acc;
    for (uint64_t g = begin; g < end; ++g) {
        if (g != begin) {
            const unsigned u = unsigned(std::countr_zero(g));  // gray(g) = gray(g - 1) with bit u flipped
            const double sign = ((state >> u) & 1) ? -1.0 : 1.0;
            state ^= uint64_t(1) << u;
            lin += sign * own[u];
            const double* row = rows.data() + std::size_t(u) * m;
            for (std::size_t k = 0; k < m; ++k) pre[k] += sign * row[k];
        }
        double t = lin;
        for (std::size_t k = 0; k < m; ++k) t += softplus(pre[k]);
        acc.add(t);
    }
    return acc.value();
}

double log_partition_enumerated(const ParamBuffer& p) {
    return log_partition_partial(p, 0, uint64_t(1) << enumerated_units(p.shape));
}

}  // namespace rbm::eval
