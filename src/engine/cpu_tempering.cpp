// Parallel tempering's sweeps and swaps on the CPU: see cpu_tempering.hpp.
#include "engine/cpu_tempering.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/cpu_kernels.hpp"
#include "util/check.hpp"

namespace rbm::cpu {

namespace {
constexpr unsigned kLevelShift = 18;  // a level's draws: (level << 18) | draw, draw < 2^18 for k <= 131071

// out[r, c] = beta (pre[r, c] + bias[c]) over [rows, cols].
void scale_pre(const float* pre, const float* bias, float beta, float* out, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = beta * (pre[r * cols + c] + bias[c]);
}
}  // namespace

Engine::SwapCounts Tempering::take_swap_counts() {
    Engine::SwapCounts taken = swaps_;
    std::fill(swaps_.proposed.begin(), swaps_.proposed.end(), 0);
    std::fill(swaps_.accepted.begin(), swaps_.accepted.end(), 0);
    return taken;
}

void Tempering::reserve(RbmShape shape, std::size_t levels, std::size_t chains) {
    if (shape == shape_ && levels == levels_ && chains == chains_) return;
    const std::size_t nv = shape.n_visible, nh = shape.n_hidden, wide = std::max(nv, nh);
    work_floats_.assign(levels * chains * 2 * (nv + nh), 0.0f);
    work_ones_.assign(levels * chains * wide, 0u);
    work_counts_.assign(levels * chains, 0);
    zeros_.assign(wide, 0.0f);
    energy_.assign(levels * chains, 0.0);
    wt_.assign(nv * nh, 0.0f);
    wt_version_ = UINT64_MAX;
    swaps_.proposed.assign(levels - 1, 0);
    swaps_.accepted.assign(levels - 1, 0);
    shape_ = shape;
    levels_ = levels;
    chains_ = chains;
}

Tempering::Work Tempering::work(std::size_t level) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, n = chains_;
    float* f = work_floats_.data() + level * n * 2 * (nv + nh);
    uint32_t* ones = work_ones_.data() + level * n * std::max(nv, nh);
    std::size_t* count = work_counts_.data() + level * n;
    return {f, f + n * nv, f + 2 * n * nv, f + 2 * n * nv + n * nh, ones, count};
}

float* Tempering::chains_of(std::size_t level, float* model_h) {
    return level == 0 ? model_h : h_.data() + (level - 1) * chains_ * shape_.n_hidden;
}

void Tempering::advance(const ParamBuffer& params, uint64_t params_version, const float* model_wt,
                        const float* model_v, float* model_h, const StepSettings& s, const StepSpec& spec) {
    const std::size_t nv = params.shape.n_visible, nh = params.shape.n_hidden, n = s.chains;
    const std::size_t levels = s.betas.size() + 1;
    RBM_CHECK(h_.size() == s.betas.size() * n * nh,
              "parallel tempering needs " << s.betas.size() << " tempered levels of " << n << " chains");
    RBM_CHECK(s.k < (1 << (kLevelShift - 1)), "parallel tempering takes at most " << (1 << (kLevelShift - 1)) - 1
                                                                                  << " Gibbs steps per update");
    reserve(params.shape, levels, n);
    if (!model_wt && wt_version_ != params_version) {
        transpose(nv, nh, params.W(), nh, wt_.data(), nv);
        wt_version_ = params_version;
    }
    step_wt_ = model_wt ? model_wt : wt_.data();
    // The levels are independent until the swaps: each is swept whole by one thread, so its
    // numbers do not depend on the thread count. The tempered levels are shared out evenly;
    // thread 0 also takes level 0's energies (one product).
    parallel([&](int t, int parts) {
        if (t == 0) {
            model_products(params, model_v);
            store_energies(0, params, model_v, model_h, work(0).pre_h);
        }
        const std::size_t tempered = levels - 1;
        for (std::size_t level = 1 + tempered * std::size_t(t) / std::size_t(parts);
             level < 1 + tempered * std::size_t(t + 1) / std::size_t(parts); ++level)
            sweep(level, s.betas[level - 1], params, s, spec);
    });
    swap(s, spec, model_h);
}

// pre_h = v W of level 0's last visible sample: the energies need it.
void Tempering::model_products(const ParamBuffer& params, const float* model_v) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, n = chains_;
    const Work w = work(0);
    if (list_sparse_rows(model_v, n, nv, nv, w.ones, w.count))
        sum_listed_rows(params.W(), nh, w.ones, nullptr, nv, w.count, n, w.pre_h, nh, nh);
    else
        gemm(false, false, n, nh, nv, model_v, params.W(), w.pre_h);
}

// k sweeps h -> v -> h of p_beta: sigmoid(beta (h W' + b)) and sigmoid(beta (v W + c)).
// Binary samples' products are sums of W' or W rows at their ones when sparse enough.
void Tempering::sweep(std::size_t level, float beta, const ParamBuffer& params, const StepSettings& s,
                      const StepSpec& spec) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, n = chains_;
    const Stream stream = Stream::make(s.seed, s.rank, Purpose::tempering);
    const uint32_t base = uint32_t(level) << kLevelShift;
    const Work w = work(level);
    float* h = chains_of(level, nullptr);
    for (int j = 0; j < s.k; ++j) {
        if (list_sparse_rows(h, n, nh, nh, w.ones, w.count))
            sum_listed_rows(step_wt_, nv, w.ones, nullptr, nh, w.count, n, w.act_v, nv, nv);
        else
            gemm(false, true, n, nv, nh, h, params.W(), w.act_v);
        scale_pre(w.act_v, params.vbias(), beta, w.act_v, n, nv);
        activate_and_sample(w.act_v, zeros_.data(), nullptr, w.v, n, nv, stream, spec.step,
                            base | uint32_t(1 + 2 * j));
        if (list_sparse_rows(w.v, n, nv, nv, w.ones, w.count))
            sum_listed_rows(params.W(), nh, w.ones, nullptr, nv, w.count, n, w.pre_h, nh, nh);
        else
            gemm(false, false, n, nh, nv, w.v, params.W(), w.pre_h);
        scale_pre(w.pre_h, params.hbias(), beta, w.act_h, n, nh);
        activate_and_sample(w.act_h, zeros_.data(), nullptr, h, n, nh, stream, spec.step, base | uint32_t(2 + 2 * j));
    }
    store_energies(level, params, w.v, h, w.pre_h);
}

// E(v, h) = -b'v - h'(v W + c) of each chain, from v W already formed.
void Tempering::store_energies(std::size_t level, const ParamBuffer& params, const float* v, const float* h,
                               const float* pre_h) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    for (std::size_t c = 0; c < chains_; ++c) {
        double e = 0;
        for (std::size_t i = 0; i < nv; ++i) e -= double(params.vbias()[i]) * v[c * nv + i];
        for (std::size_t j = 0; j < nh; ++j)
            e -= double(h[c * nh + j]) * (double(pre_h[c * nh + j]) + params.hbias()[j]);
        energy_[level * chains_ + c] = e;
    }
}

// Metropolis swaps of the pairs (m, m + 1), m of the step's parity (disjoint pairs; even
// and odd alternate, which carries states down the ladder faster than random pairs).
void Tempering::swap(const StepSettings& s, const StepSpec& spec, float* model_h) {
    const std::size_t nh = shape_.n_hidden, n = chains_;
    const Stream stream = Stream::make(s.seed, s.rank, Purpose::tempering);
    auto beta = [&](std::size_t m) { return m == 0 ? 1.0 : double(s.betas[m - 1]); };
    for (std::size_t m = spec.step % 2; m + 1 < levels_; m += 2) {
        float* lower = chains_of(m, model_h);
        float* upper = chains_of(m + 1, model_h);
        for (std::size_t c = 0; c < n; ++c) {
            const double log_ratio = (beta(m) - beta(m + 1)) * (energy_[m * n + c] - energy_[(m + 1) * n + c]);
            const double u = uniform_at(stream, spec.step, 0, m * n + c);
            ++swaps_.proposed[m];
            if (log_ratio >= 0 || u < std::exp(log_ratio)) {
                std::swap_ranges(lower + c * nh, lower + (c + 1) * nh, upper + c * nh);
                ++swaps_.accepted[m];
            }
        }
    }
}

}  // namespace rbm::cpu
