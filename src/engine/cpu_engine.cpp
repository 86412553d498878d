// The CPU engine: every matrix product through OpenBLAS sgemm, the elementwise work
// in fused passes (cpu_kernels.hpp), all buffers allocated before the first step.
// It is what runs without a GPU and the reference the CUDA engine is tested against.
#include <cblas.h>

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

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          const float* b, float* c, float alpha = 1.0f, float beta = 0.0f) {
    const int lda = int(trans_a ? m : k), ldb = int(trans_b ? k : n);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                int(m), int(n), int(k), alpha, a, lda, b, ldb, beta, c, int(n));
}

class CpuEngine final : public Engine {
public:
    explicit CpuEngine(RbmShape shape)
        : shape_(shape), params_(shape), velocity_(shape), grad_(shape.total()) {}

    std::string describe() const override { return "cpu (OpenBLAS sgemm)"; }
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
    void negative_phase(const StepSettings& s, const StepSpec& spec, float* vk, float* phk);
    void measure(const StepSettings& s, const StepSpec& spec);
    void accumulate_gradient(std::size_t batch, std::size_t chains);

    RbmShape shape_;
    ParamBuffer params_, velocity_;
    std::vector<float> grad_;
    std::vector<float> shard_;
    std::size_t shard_rows_ = 0;
    bool shard_binary_ = false;
    std::vector<float> chain_h_;                   // persistent chains' hidden states
    // Step workspace: [v0; vk] and [ph0; phk] stacked so one sgemm forms dW.
    std::vector<float> stack_v_, stack_h_, pre_h_, pre_v_, prob_v_, h_, pl_x_, pl_pre_;
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
    prob_v_.assign(most * nv, 0.0f);
    h_.assign(most * nh, 0.0f);
    pl_x_.assign(batch * nv, 0.0f);
    pl_pre_.assign(batch * nh, 0.0f);
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
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    if (persistent)
        RBM_CHECK(chain_h_.size() == chains * nh, "PCD needs " << chains << " persistent chains");
    reserve(batch, chains);
    float* v0 = stack_v_.data();
    float* ph0 = stack_h_.data();
    gather_batch(rows, batch, v0);

    // Positive phase: ph0 = sigmoid(v0 W + c); pre_h_ keeps v0 W for the costs.
    gemm(false, false, batch, nh, nv, v0, params_.W(), pre_h_.data());
    cpu::add_bias_sigmoid(pre_h_.data(), params_.hbias(), ph0, batch, nh);
    if (spec.measure) measure(s, spec);

    negative_phase(s, spec, v0 + batch * nv, ph0 + batch * nh);
    accumulate_gradient(batch, chains);
}

// k Gibbs sweeps h -> v -> h from the persistent chains (PCD) or from a sample of ph0
// (CD). Draw 0 samples CD's start; sweep j draws v with 1 + 2j and h with 2 + 2j.
void CpuEngine::negative_phase(const StepSettings& s, const StepSpec& spec, float* vk, float* phk) {
    const bool persistent = s.method == Method::pcd;
    const std::size_t n = persistent ? s.chains : s.batch;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const Stream stream = Stream::make(s.seed, s.rank, Purpose::gibbs);
    float* h = persistent ? chain_h_.data() : h_.data();
    if (!persistent) cpu::sample_bernoulli(stack_h_.data(), h, n * nh, stream, spec.step, 0);
    for (int j = 0; j < s.k; ++j) {
        gemm(false, true, n, nv, nh, h, params_.W(), pre_v_.data());
        cpu::activate_and_sample(pre_v_.data(), params_.vbias(), prob_v_.data(), vk, n, nv, stream,
                                 spec.step, uint32_t(1 + 2 * j));
        gemm(false, false, n, nh, nv, vk, params_.W(), pre_h_.data());
        cpu::activate_and_sample(pre_h_.data(), params_.hbias(), phk, h, n, nh, stream, spec.step,
                                 uint32_t(2 + 2 * j));
    }
}

// grad = [v0; vk]' [ph0 / B; -phk / C] and the bias sums, in one sgemm and one pass.
void CpuEngine::accumulate_gradient(std::size_t batch, std::size_t chains) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, rows = batch + chains;
    const float pos = 1.0f / float(batch), neg = -1.0f / float(chains);
    for (std::size_t r = 0; r < rows; ++r) {
        const float w = r < batch ? pos : neg;
        float* hr = stack_h_.data() + r * nh;
        for (std::size_t j = 0; j < nh; ++j) hr[j] *= w;
    }
    gemm(true, false, nv, nh, rows, stack_v_.data(), stack_h_.data(), grad_.data());
    float* db = grad_.data() + shape_.vbias_offset();
    float* dc = grad_.data() + shape_.hbias_offset();
    std::fill(db, db + nv + nh, 0.0f);
    for (std::size_t r = 0; r < rows; ++r) {
        const float w = r < batch ? pos : neg;
        const float* vr = stack_v_.data() + r * nv;
        const float* hr = stack_h_.data() + r * nh;
        for (std::size_t i = 0; i < nv; ++i) db[i] += w * vr[i];
        for (std::size_t j = 0; j < nh; ++j) dc[j] += hr[j];
    }
}

// The tutorial's stochastic pseudo-likelihood (one bit, x = round(v0)): flipping bit i
// moves the hidden pre-activation by +-W[i, :], so it costs O(batch x hidden), plus the
// mean-field reconstruction cross-entropy of v0.
void CpuEngine::measure(const StepSettings& s, const StepSpec& spec) {
    const std::size_t batch = s.batch, nv = shape_.n_visible, nh = shape_.n_hidden;
    const float* v0 = stack_v_.data();
    const float* x = v0;
    const float* pre = pre_h_.data();
    if (!shard_binary_) {
        for (std::size_t e = 0; e < batch * nv; ++e) pl_x_[e] = v0[e] >= 0.5f ? 1.0f : 0.0f;
        gemm(false, false, batch, nh, nv, pl_x_.data(), params_.W(), pl_pre_.data());
        x = pl_x_.data();
        pre = pl_pre_.data();
    }
    const std::size_t i = spec.pl_bit;
    const float* wi = params_.W() + i * nh;
    const float* c = params_.hbias();
    for (std::size_t r = 0; r < batch; ++r) {
        const float sign = 1.0f - 2.0f * x[r * nv + i];
        double fe_diff = -double(sign) * params_.vbias()[i];
        const float* pr = pre + r * nh;
        for (std::size_t j = 0; j < nh; ++j)
            fe_diff -= double(cpu::softplusf(pr[j] + c[j] + sign * wi[j]) - cpu::softplusf(pr[j] + c[j]));
        metric_sums_.pseudo_likelihood -= double(nv) * exact::softplus(-fe_diff);
    }
    gemm(false, true, batch, nv, nh, stack_h_.data(), params_.W(), pre_v_.data());
    for (std::size_t r = 0; r < batch; ++r) {
        double xent = 0;
        for (std::size_t e = 0; e < nv; ++e) {
            const float a = pre_v_[r * nv + e] + params_.vbias()[e];
            xent += double(cpu::softplusf(a) - v0[r * nv + e] * a);
        }
        metric_sums_.reconstruction_xent += xent;
    }
    metric_sums_.examples += double(batch);
}

void CpuEngine::apply_update(const UpdateRule& rule, float scale) {
    float* p = params_.values.data();
    float* v = velocity_.values.data();
    const std::size_t n_weights = shape_.weight_count(), total = shape_.total();
    for (std::size_t e = 0; e < total; ++e) {
        const float decay = e < n_weights ? rule.weight_decay * p[e] : 0.0f;
        v[e] = rule.momentum * v[e] + rule.learning_rate * (scale * grad_[e] - decay);
        p[e] += v[e];
    }
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
        for (std::size_t e = 0; e < m * nv; ++e) total -= double(x[e]) * params_.vbias()[e % nv];
    }
    return total;
}

void CpuEngine::gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                              uint64_t first_step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    std::vector<float> pre_h(n * nh), prob_h(n * nh), h(n * nh), pre_v(n * nv);
    for (int s = 0; s < steps; ++s) {
        const uint64_t step = first_step + uint64_t(s);
        gemm(false, false, n, nh, nv, v, params_.W(), pre_h.data());
        cpu::activate_and_sample(pre_h.data(), params_.hbias(), prob_h.data(), h.data(), n, nh, stream,
                                 step, 0);
        gemm(false, true, n, nv, nh, h.data(), params_.W(), pre_v.data());
        cpu::activate_and_sample(pre_v.data(), params_.vbias(), mean, v, n, nv, stream, step, 1);
    }
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
