// The CPU engine: every matrix product through OpenBLAS sgemm, the elementwise work
// in fused passes (cpu_kernels.hpp), all buffers allocated before the first step.
// It is what runs without a GPU and the reference the CUDA engine is tested against.
//
// With several loop threads (cpu::set_threads) a step runs as one parallel region:
// thread t owns a block of hidden columns and a block of visible columns, computes its
// columns of each product (single-threaded OpenBLAS on a block of W) and activates and
// samples exactly those, and the threads meet at a barrier before each product that
// needs the whole of the previous result. Every draw is keyed by its element's index
// and every monitoring sum is taken row by row in row order, so the split changes no
// result beyond the last bits of OpenBLAS's sums.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "engine/cpu_kernels.hpp"
#include "engine/engine.hpp"
#include "model/exact.hpp"
#include "util/check.hpp"

namespace rbm {
namespace {

using cpu::gemm;

// Rows [begin, end) of n that thread t of `parts` takes (plain split: rows are whole).
std::pair<std::size_t, std::size_t> row_share(std::size_t n, int t, int parts) {
    return {n * std::size_t(t) / std::size_t(parts), n * std::size_t(t + 1) / std::size_t(parts)};
}

class CpuEngine final : public Engine {
public:
    explicit CpuEngine(RbmShape shape)
        : shape_(shape), params_(shape), velocity_(shape), grad_(shape.total()) {}

    std::string describe() const override {
        const int t = cpu::threads();
        return std::string("cpu (OpenBLAS sgemm, ") + cpu::kernel_isa() + " kernels" +
               (t > 1 ? ", " + std::to_string(t) + " loop threads)" : ")");
    }
    RbmShape shape() const override { return shape_; }

    void set_params(const ParamBuffer& p) override { copy_checked(p, params_); }
    void get_params(ParamBuffer& p) const override { p = params_; }
    void set_velocity(const ParamBuffer& v) override { copy_checked(v, velocity_); }
    void get_velocity(ParamBuffer& v) const override { v = velocity_; }

    void set_training_shard(const Dataset& shard) override {
        RBM_CHECK(shard.n_cols == shape_.n_visible,
                  "training data has " << shard.n_cols << " columns, the model " << shape_.n_visible);
        shard_ = shard.values;
        shard_rows_ = shard.n_rows;
        shard_binary_ = is_binary(shard);
    }

    void set_chains(const std::vector<uint8_t>& hidden) override {
        RBM_CHECK(hidden.size() % shape_.n_hidden == 0, "chain state is not a whole number of rows");
        chain_h_.assign(hidden.begin(), hidden.end());
    }
    std::vector<uint8_t> get_chains() const override {
        return std::vector<uint8_t>(chain_h_.begin(), chain_h_.end());
    }

    void compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) override;
    GradientView gradient() override { return {grad_.data(), grad_.size(), false}; }
    void apply_update(const UpdateRule& rule, float scale) override;
    MetricSums take_metric_sums() override { return std::exchange(metric_sums_, MetricSums{}); }
    bool params_finite() const override {
        return std::all_of(params_.values.begin(), params_.values.end(),
                           [](float x) { return std::isfinite(x); });
    }
    double free_energy_sum(const float* rows, std::size_t n) override;
    void gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                       uint64_t first_step) override;
    void chain_visibles(float* mean, float* sample, const Stream& stream, uint64_t step) override;

private:
    void copy_checked(const ParamBuffer& from, ParamBuffer& to) {
        RBM_CHECK(from.shape == shape_, "parameter shape " << from.shape.n_visible << "x"
                                        << from.shape.n_hidden << " does not match the engine's");
        to.values = from.values;
    }
    void reserve(std::size_t batch, std::size_t chains);
    void gather_batch(const uint32_t* rows, std::size_t batch, float* v0) const;
    // Thread t's part of a step (of `parts` threads); the pieces below are called by it.
    void step_part(int t, int parts, const StepSettings& s, const StepSpec& spec);
    void measure_part(int t, int parts, const StepSettings& s, const StepSpec& spec);
    void gradient_part(int t, int parts, std::size_t batch, std::size_t chains);

    RbmShape shape_;
    ParamBuffer params_, velocity_;
    std::vector<float> grad_;
    std::vector<float> shard_;
    std::size_t shard_rows_ = 0;
    bool shard_binary_ = false;
    std::vector<float> chain_h_;                   // persistent chains' hidden states
    // Step workspace: [v0; vk] and [ph0; phk] stacked so one sgemm forms dW.
    std::vector<float> stack_v_, stack_h_, pre_h_, pre_v_, h_, pl_pre_;
    std::vector<uint32_t> pl_ones_;                // the ones of round(v0), row by row
    std::vector<double> pl_row_, xent_row_;        // this step's costs, row by row
    std::size_t reserved_batch_ = 0, reserved_chains_ = 0;
    MetricSums metric_sums_;
};

void CpuEngine::reserve(std::size_t batch, std::size_t chains) {
    if (batch == reserved_batch_ && chains == reserved_chains_) return;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, most = std::max(batch, chains);
    stack_v_.assign((batch + chains) * nv, 0.0f);
    stack_h_.assign((batch + chains) * nh, 0.0f);
    pre_h_.assign(most * nh, 0.0f);
    pre_v_.assign(most * nv, 0.0f);
    h_.assign(most * nh, 0.0f);
    pl_pre_.assign(batch * nh, 0.0f);
    pl_ones_.assign(batch * nv, 0u);
    pl_row_.assign(batch, 0.0);
    xent_row_.assign(batch, 0.0);
    reserved_batch_ = batch;
    reserved_chains_ = chains;
}

void CpuEngine::gather_batch(const uint32_t* rows, std::size_t batch, float* v0) const {
    const std::size_t nv = shape_.n_visible;
    for (std::size_t r = 0; r < batch; ++r) {
        RBM_CHECK(rows[r] < shard_rows_, "row " << rows[r] << " is outside the shard of " << shard_rows_);
        std::memcpy(v0 + r * nv, shard_.data() + std::size_t(rows[r]) * nv, nv * sizeof(float));
    }
}

void CpuEngine::compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) {
    const bool persistent = s.method == Method::pcd;
    const std::size_t batch = s.batch, chains = persistent ? s.chains : s.batch;
    if (persistent)
        RBM_CHECK(chain_h_.size() == chains * shape_.n_hidden, "PCD needs " << chains << " persistent chains");
    RBM_CHECK(!spec.measure || spec.pl_bit < shape_.n_visible, "pseudo-likelihood bit out of range");
    reserve(batch, chains);
    gather_batch(rows, batch, stack_v_.data());
    cpu::parallel([&](int t, int parts) { step_part(t, parts, s, spec); });
    if (spec.measure) {
        // Row by row in row order, whatever the thread count.
        for (std::size_t r = 0; r < batch; ++r) {
            metric_sums_.pseudo_likelihood += pl_row_[r];
            metric_sums_.reconstruction_xent += xent_row_[r];
        }
        metric_sums_.examples += double(batch);
    }
}

// Positive phase, costs, k Gibbs sweeps h -> v -> h from the persistent chains (PCD) or
// from a sample of ph0 (CD), gradient. Draw 0 samples CD's start; sweep j draws v with
// 1 + 2j and h with 2 + 2j.
void CpuEngine::step_part(int t, int parts, const StepSettings& s, const StepSpec& spec) {
    const bool persistent = s.method == Method::pcd;
    const std::size_t batch = s.batch, n = persistent ? s.chains : s.batch;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const auto [h0, h1] = cpu::share(nh, t, parts);  // this thread's hidden columns
    const auto [c0, c1] = cpu::share(nv, t, parts);  // and visible columns
    const float* W = params_.W();
    const Stream stream = Stream::make(s.seed, s.rank, Purpose::gibbs);
    float* v0 = stack_v_.data();
    float* ph0 = stack_h_.data();
    float* vk = v0 + batch * nv;
    float* phk = ph0 + batch * nh;
    float* h = persistent ? chain_h_.data() : h_.data();

    // Positive phase: ph0 = sigmoid(v0 W + c); pre_h_ keeps v0 W for the costs.
    gemm(false, false, batch, h1 - h0, nv, v0, nv, W + h0, nh, pre_h_.data() + h0, nh);
    cpu::add_bias_sigmoid_cols(pre_h_.data(), params_.hbias(), ph0, batch, nh, h0, h1);
    if (!persistent) cpu::sample_bernoulli_cols(ph0, h, n, nh, h0, h1, stream, spec.step, 0);
    cpu::barrier();
    if (spec.measure) measure_part(t, parts, s, spec);

    for (int j = 0; j < s.k; ++j) {
        gemm(false, true, n, c1 - c0, nh, h, nh, W + c0 * nh, nh, pre_v_.data() + c0, nv);
        cpu::activate_and_sample_cols(pre_v_.data(), params_.vbias(), nullptr, vk, n, nv, c0, c1, stream,
                                      spec.step, uint32_t(1 + 2 * j));
        cpu::barrier();
        gemm(false, false, n, h1 - h0, nv, vk, nv, W + h0, nh, pre_h_.data() + h0, nh);
        cpu::activate_and_sample_cols(pre_h_.data(), params_.hbias(), phk, h, n, nh, h0, h1, stream,
                                      spec.step, uint32_t(2 + 2 * j));
        // The gradient below reads only this thread's columns of phk; the next sweep all of h.
        if (j + 1 < s.k) cpu::barrier();
    }
    gradient_part(t, parts, batch, n);
}

// Columns [h0, h1) of grad = [v0; vk]' [ph0 / B; -phk / C] (one sgemm) and this thread's
// parts of the bias sums: its hidden columns of dc, its visible columns of db.
void CpuEngine::gradient_part(int t, int parts, std::size_t batch, std::size_t chains) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, rows = batch + chains;
    const auto [h0, h1] = cpu::share(nh, t, parts);
    const auto [c0, c1] = cpu::share(nv, t, parts);
    const float pos = 1.0f / float(batch), neg = -1.0f / float(chains);
    float* db = grad_.data() + shape_.vbias_offset();
    float* dc = grad_.data() + shape_.hbias_offset();
    std::fill(dc + h0, dc + h1, 0.0f);
    for (std::size_t r = 0; r < rows; ++r) {
        const float w = r < batch ? pos : neg;
        float* hr = stack_h_.data() + r * nh;
        for (std::size_t j = h0; j < h1; ++j) {
            hr[j] *= w;
            dc[j] += hr[j];
        }
    }
    gemm(true, false, nv, h1 - h0, rows, stack_v_.data(), nv, stack_h_.data() + h0, nh, grad_.data() + h0, nh);
    std::fill(db + c0, db + c1, 0.0f);
    for (std::size_t r = 0; r < rows; ++r) {
        const float w = r < batch ? pos : neg;
        const float* vr = stack_v_.data() + r * nv;
        for (std::size_t i = c0; i < c1; ++i) db[i] += w * vr[i];
    }
}

// The tutorial's stochastic pseudo-likelihood (one bit, x = round(v0)): flipping bit i
// moves the hidden pre-activation by +-W[i, :], so it costs O(batch x hidden). For binary
// data x W is the positive phase's v0 W; for real-valued data it is the sum of W's rows
// at x's ones, O(ones x hidden) (one row product when x is dense), never a second full
// product. Plus the mean-field reconstruction cross-entropy of v0 (one product). Thread
// t takes rows of the costs and visible columns of the product; costs go to pl_row_ and
// xent_row_, summed in row order by compute_gradient.
void CpuEngine::measure_part(int t, int parts, const StepSettings& s, const StepSpec& spec) {
    const std::size_t batch = s.batch, nv = shape_.n_visible, nh = shape_.n_hidden;
    const auto [r0, r1] = row_share(batch, t, parts);
    const auto [c0, c1] = cpu::share(nv, t, parts);
    const float* W = params_.W();
    const float* v0 = stack_v_.data();
    const float* pre = shard_binary_ ? pre_h_.data() : pl_pre_.data();
    const std::size_t i = spec.pl_bit;
    for (std::size_t r = r0; r < r1; ++r) {
        const float* v = v0 + r * nv;
        if (!shard_binary_) {
            uint32_t* ones = pl_ones_.data() + r * nv;
            std::size_t n = 0;
            for (std::size_t e = 0; e < nv; ++e) {
                ones[n] = uint32_t(e);
                n += v[e] >= 0.5f;
            }
            if (2 * n <= nv) {
                cpu::sum_rows(W, nh, ones, n, pl_pre_.data() + r * nh, nh);
            } else {
                float* x = pre_v_.data() + r * nv;  // free until the reconstruction below
                for (std::size_t e = 0; e < nv; ++e) x[e] = v[e] >= 0.5f ? 1.0f : 0.0f;
                gemm(false, false, 1, nh, nv, x, W, pl_pre_.data() + r * nh);
            }
        }
        const float xi = v[i] >= 0.5f ? 1.0f : 0.0f;  // v[i] itself for binary data
        const float sign = 1.0f - 2.0f * xi;
        const double fe_diff = -double(sign) * params_.vbias()[i] -
                               cpu::softplus_shift_delta(pre + r * nh, params_.hbias(), W + i * nh, sign, nh);
        pl_row_[r] = -double(nv) * exact::softplus(-fe_diff);
    }
    cpu::barrier();  // pre_v_ was scratch for dense rows
    gemm(false, true, batch, c1 - c0, nh, stack_h_.data(), nh, W + c0 * nh, nh, pre_v_.data() + c0, nv);
    cpu::barrier();
    for (std::size_t r = r0; r < r1; ++r)
        xent_row_[r] = cpu::bernoulli_xent(pre_v_.data() + r * nv, params_.vbias(), v0 + r * nv, nv);
    cpu::barrier();  // the negative phase overwrites pre_v_ and pre_h_
}

void CpuEngine::apply_update(const UpdateRule& rule, float scale) {
    float* p = params_.values.data();
    float* v = velocity_.values.data();
    const float* g = grad_.data();
    const std::size_t n_weights = shape_.weight_count(), total = shape_.total();
    const float lr = rule.learning_rate, mom = rule.momentum, decay = rule.weight_decay;
    cpu::parallel([&](int t, int parts) {
        const std::size_t begin = total * std::size_t(t) / std::size_t(parts) / 16 * 16;
        const std::size_t end = t + 1 == parts ? total : total * std::size_t(t + 1) / std::size_t(parts) / 16 * 16;
        for (std::size_t e = begin; e < std::min(end, n_weights); ++e) {
            v[e] = mom * v[e] + lr * (scale * g[e] - decay * p[e]);
            p[e] += v[e];
        }
        for (std::size_t e = std::max(begin, n_weights); e < end; ++e) {
            v[e] = mom * v[e] + lr * (scale * g[e]);
            p[e] += v[e];
        }
    });
}

double CpuEngine::free_energy_sum(const float* rows, std::size_t n) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, chunk = 256;
    std::vector<float> pre(chunk * nh);
    double total = 0;
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t m = std::min(chunk, n - start);
        const float* x = rows + start * nv;
        gemm(false, false, m, nh, nv, x, params_.W(), pre.data());
        total -= cpu::sum_softplus(pre.data(), params_.hbias(), m, nh);
        for (std::size_t r = 0; r < m; ++r)
            for (std::size_t e = 0; e < nv; ++e) total -= double(x[r * nv + e]) * params_.vbias()[e];
    }
    return total;
}

// Split like a training step's sweeps: thread t computes and samples its columns.
void CpuEngine::gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                              uint64_t first_step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    std::vector<float> pre_h(n * nh), prob_h(n * nh), h(n * nh), pre_v(n * nv);
    const float* W = params_.W();
    cpu::parallel([&](int t, int parts) {
        const auto [h0, h1] = cpu::share(nh, t, parts);
        const auto [c0, c1] = cpu::share(nv, t, parts);
        for (int s = 0; s < steps; ++s) {
            const uint64_t step = first_step + uint64_t(s);
            gemm(false, false, n, h1 - h0, nv, v, nv, W + h0, nh, pre_h.data() + h0, nh);
            cpu::activate_and_sample_cols(pre_h.data(), params_.hbias(), prob_h.data(), h.data(), n, nh, h0, h1,
                                          stream, step, 0);
            cpu::barrier();
            gemm(false, true, n, c1 - c0, nh, h.data(), nh, W + c0 * nh, nh, pre_v.data() + c0, nv);
            cpu::activate_and_sample_cols(pre_v.data(), params_.vbias(), mean, v, n, nv, c0, c1, stream, step, 1);
            cpu::barrier();
        }
    });
}

void CpuEngine::chain_visibles(float* mean, float* sample, const Stream& stream, uint64_t step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, n = chain_h_.size() / nh;
    std::vector<float> pre_v(n * nv);
    gemm(false, true, n, nv, nh, chain_h_.data(), params_.W(), pre_v.data());
    cpu::activate_and_sample(pre_v.data(), params_.vbias(), mean, sample, n, nv, stream, step, 0);
}

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(RbmShape shape) { return std::make_unique<CpuEngine>(shape); }

}  // namespace rbm
