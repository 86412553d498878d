// The CPU engine: matrix products through OpenBLAS sgemm (those of sparse samples as sums
// of rows), the elementwise work in fused passes (cpu_kernels.hpp), all buffers
// allocated before the first step.
// It is what runs without a GPU and the reference the CUDA engine is tested against.
//
// With several loop threads (cpu::set_threads) a step runs as one parallel region in
// which thread t owns a block of hidden units: their columns of W, activations and
// chains. It computes the products on the hidden side (v W) for its units only, and its
// units' share of the products on the visible side (h W' summed over its hidden units: a
// partial product); after a barrier each thread adds the partials for a block of visible
// units and activates those. So each thread reads only its own columns of W, and per
// Gibbs sweep only the visible sample and the partials cross between cores, with two
// barriers. The gradient and the update are split by rows (contiguous blocks). Once the
// chain's binary samples are sparse (a trained model), the Gibbs products are sums of W's
// rows at the samples' ones (and of W''s rows, W transposed once per update), in a fixed
// order. Every draw is keyed by its element's index and every monitoring sum is
// reduced in a fixed order, so a run is deterministic for a given thread count; across
// thread counts the visible pre-activations differ in their last bits (their sums over
// hidden units are split).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "engine/cpu_kernels.hpp"
#include "engine/cpu_tempering.hpp"
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
        : shape_(shape), params_(shape), velocity_(shape), grad_(shape.total() + shape.n_hidden),
          deferred_rows_(shape.n_visible, 0) {}

    std::string describe() const override {
        cpu::adopt_blas_threads();  // the threads `rbm train --threads` asked for, as the steps will run
        const int t = cpu::threads();
        return std::string("cpu (OpenBLAS sgemm, ") + cpu::kernel_isa() + " kernels" +
               (t > 1 ? ", " + std::to_string(t) + " loop threads)" : ")");
    }
    RbmShape shape() const override { return shape_; }

    void set_params(const ParamBuffer& p) override {
        copy_checked(p, params_);
        ++params_version_;
    }
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
        check_chain_state(hidden, shape_);
        chain_h_.assign(hidden.begin(), hidden.end());
    }
    std::vector<uint8_t> get_chains() const override {
        return std::vector<uint8_t>(chain_h_.begin(), chain_h_.end());
    }
    void set_tempered_chains(const std::vector<uint8_t>& hidden) override {
        check_chain_state(hidden, shape_);
        tempering_.set_chains(hidden);
    }
    std::vector<uint8_t> get_tempered_chains() const override { return tempering_.get_chains(); }
    SwapCounts take_swap_counts() override { return tempering_.take_swap_counts(); }

    void compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) override;
    void set_offsets(const Offsets& offsets) override {
        check_offsets(offsets, shape_);
        offsets_ = offsets;
    }
    Offsets get_offsets() const override { return offsets_; }

    GradientView gradient() override {
        store_deferred_gradient();
        return {grad_.data(), shape_.total() + (offsets_.empty() ? 0 : shape_.n_hidden), false};
    }
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
    // W' of the current parameters when every thread's rows of wt_ hold it (the sparse
    // sweeps transposed them this step), else null.
    const float* current_wt() const {
        const bool all = std::all_of(wt_version_.begin(), wt_version_.end(),
                                     [&](uint64_t v) { return v == params_version_; });
        return all && !wt_version_.empty() ? wt_.data() : nullptr;
    }
    void gather_batch(const uint32_t* rows, std::size_t batch, float* v0) const;
    // Thread t's part of a step (of `parts` threads); the pieces below are called by it.
    void step_part(int t, int parts, const StepSettings& s, const StepSpec& spec);
    void measure_part(int t, int parts, const StepSettings& s, const StepSpec& spec);
    void gradient_part(int t, int parts, std::size_t batch, std::size_t chains);
    void visible_partial(int t, std::size_t n, const float* h, bool binary, std::size_t h0, std::size_t h1);
    bool sparse_hidden_pre(int t, std::size_t n, const float* v, bool binary, std::size_t h0, std::size_t h1,
                           float* pre);
    bool sparse_gradient(int t, std::size_t rows, std::size_t c0, std::size_t c1);
    void store_deferred_gradient();
    void store_listed_gradient(std::size_t i0, std::size_t i1);
    // Calls f(i0, i1, deferred) for each run [i0, i1) of rows in [c0, c1) alike in
    // deferred_rows_.
    template <class F>
    void for_row_runs(std::size_t c0, std::size_t c1, F f) const {
        for (std::size_t i0 = c0, i1; i0 < c1; i0 = i1) {
            for (i1 = i0 + 1; i1 < c1 && deferred_rows_[i1] == deferred_rows_[i0];) ++i1;
            f(i0, i1, deferred_rows_[i0] != 0);
        }
    }
    // Thread t's scratch for a sample's nonzeros: where they are, their values and how
    // many each row has.
    struct Listed {
        uint32_t* ones;
        float* values;
        std::size_t* count;
    };
    Listed thread_ones(int t) {
        const std::size_t most = std::max(reserved_batch_, reserved_chains_);
        const std::size_t at = std::size_t(t) * most * std::max(shape_.n_visible, shape_.n_hidden);
        return {ones_.data() + at, ones_values_.data() + at, ones_count_.data() + std::size_t(t) * most};
    }
    bool sparse_visible_pre(int t, std::size_t n, const float* h, std::size_t h0, std::size_t h1, float* out,
                            std::size_t ldo);
    void sum_partials(int parts, std::size_t n, std::size_t c0, std::size_t c1);
    void sum_partials_row(int parts, std::size_t r) {
        const std::size_t nv = shape_.n_visible, stride = std::max(reserved_batch_, reserved_chains_) * nv;
        float* out = pre_v_.data() + r * nv;
        std::copy(partial_.data() + r * nv, partial_.data() + (r + 1) * nv, out);
        for (int t = 1; t < parts; ++t) {
            const float* in = partial_.data() + std::size_t(t) * stride + r * nv;
            for (std::size_t c = 0; c < nv; ++c) out[c] += in[c];
        }
    }

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
    std::vector<std::size_t> pl_count_;            // how many ones each row has
    std::vector<float> pl_x_;                      // round(v0) of rows too dense for pl_ones_
    std::vector<uint32_t> words_;                  // per thread: a pass's Philox words, laid out like its matrix
    std::vector<float> partial_;                   // per thread: its hidden units' share of h W'
    std::vector<double> pl_part_;                  // per thread and row: its hidden units' share of the PL sum
    std::vector<double> pl_row_, xent_row_;        // this step's costs, row by row
    std::vector<uint32_t> ones_;                   // per thread: a sparse sample's ones, row by row
    std::vector<float> ones_values_;               // per thread: their values (data, not samples)
    std::vector<std::size_t> ones_count_;          // per thread: how many each row has
    std::vector<float> wt_;                        // W' [nh, nv]: thread t's rows are its hidden units
    std::vector<uint64_t> wt_version_;             // per thread: the params_version_ its rows of wt_ hold
    std::vector<uint32_t> col_rows_;               // [nv][batch + chains]: the rows where [v0; vk] is nonzero
    std::vector<float> col_values_;                // [nv][batch + chains]: its values there
    std::vector<std::size_t> col_count_;           // [nv]: how many
    // [nv]: 1 where grad_'s weight row is not stored but summed from the lists above when
    // needed: by the update, which applies it without storing it, or by gradient().
    std::vector<uint8_t> deferred_rows_;
    uint64_t params_version_ = 0;                  // counts changes of params_
    std::size_t reserved_batch_ = 0, reserved_chains_ = 0;
    int reserved_threads_ = 0;
    MetricSums metric_sums_;
    Offsets offsets_;                              // centering; empty: plain RBM
    cpu::Tempering tempering_;                     // PT's tempered levels
};

void CpuEngine::reserve(std::size_t batch, std::size_t chains) {
    const int threads = cpu::threads();
    if (batch == reserved_batch_ && chains == reserved_chains_ && threads == reserved_threads_) return;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, most = std::max(batch, chains);
    const std::size_t t = std::size_t(threads);
    stack_v_.assign((batch + chains) * nv, 0.0f);
    stack_h_.assign((batch + chains) * nh, 0.0f);
    pre_h_.assign(t * most * nh, 0.0f);  // per thread: no cache line written by two
    pre_v_.assign(most * nv, 0.0f);
    h_.assign(most * nh, 0.0f);
    pl_pre_.assign(batch * nh, 0.0f);
    pl_ones_.assign(batch * nv, 0u);
    pl_count_.assign(batch, 0);
    pl_x_.assign(batch * nv, 0.0f);
    words_.assign(t * most * std::max(nv, nh), 0u);
    partial_.assign(t > 1 ? t * most * nv : 0, 0.0f);
    pl_part_.assign(t * batch, 0.0);
    pl_row_.assign(batch, 0.0);
    xent_row_.assign(batch, 0.0);
    ones_.assign(t * most * std::max(nv, nh), 0u);
    ones_values_.assign(t * most * std::max(nv, nh), 0.0f);
    ones_count_.assign(t * most, 0);
    wt_.assign(nv * nh, 0.0f);
    wt_version_.assign(t, UINT64_MAX);
    col_rows_.assign(nv * (batch + chains), 0u);
    col_values_.assign(nv * (batch + chains), 0.0f);
    col_count_.assign(nv, 0);
    deferred_rows_.assign(nv, 0);
    reserved_batch_ = batch;
    reserved_chains_ = chains;
    reserved_threads_ = threads;
}

void CpuEngine::gather_batch(const uint32_t* rows, std::size_t batch, float* v0) const {
    const std::size_t nv = shape_.n_visible;
    for (std::size_t r = 0; r < batch; ++r) {
        RBM_CHECK(rows[r] < shard_rows_, "row " << rows[r] << " is outside the shard of " << shard_rows_);
        std::memcpy(v0 + r * nv, shard_.data() + std::size_t(rows[r]) * nv, nv * sizeof(float));
    }
}

void CpuEngine::compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) {
    const bool persistent = keeps_chains(s.method);
    const std::size_t batch = s.batch, chains = persistent ? s.chains : s.batch;
    if (persistent)
        RBM_CHECK(chain_h_.size() == chains * shape_.n_hidden, "PCD needs " << chains << " persistent chains");
    RBM_CHECK(!spec.measure || spec.pl_bit < shape_.n_visible, "pseudo-likelihood bit out of range");
    cpu::adopt_blas_threads();
    reserve(batch, chains);
    gather_batch(rows, batch, stack_v_.data());
    if (spec.measure && !shard_binary_) {
        // x = round(v0) for the pseudo-likelihood: each row's ones, or x itself when dense.
        const std::size_t nv = shape_.n_visible;
        for (std::size_t r = 0; r < batch; ++r) {
            const float* v = stack_v_.data() + r * nv;
            uint32_t* ones = pl_ones_.data() + r * nv;
            std::size_t count = 0;
            for (std::size_t e = 0; e < nv; ++e) {
                ones[count] = uint32_t(e);
                count += v[e] >= 0.5f;
            }
            pl_count_[r] = count;
            if (2 * count > nv)
                for (std::size_t e = 0; e < nv; ++e) pl_x_[r * nv + e] = v[e] >= 0.5f ? 1.0f : 0.0f;
        }
    }
    cpu::parallel([&](int t, int parts) { step_part(t, parts, s, spec); });
    if (spec.measure) {
        // Row by row in row order, whatever the thread count.
        for (std::size_t r = 0; r < batch; ++r) {
            metric_sums_.pseudo_likelihood += pl_row_[r];
            metric_sums_.reconstruction_xent += xent_row_[r];
        }
        metric_sums_.examples += double(batch);
    }
    if (s.method == Method::pt)
        tempering_.advance(params_, params_version_, current_wt(), stack_v_.data() + batch * shape_.n_visible,
                           chain_h_.data(), s, spec);
}

// Positive phase, costs, k Gibbs sweeps h -> v -> h from the persistent chains (PCD) or
// from a sample of ph0 (CD), gradient. Draw 0 samples CD's start; sweep j draws v with
// 1 + 2j and h with 2 + 2j.
void CpuEngine::step_part(int t, int parts, const StepSettings& s, const StepSpec& spec) {
    const bool persistent = keeps_chains(s.method);
    const std::size_t batch = s.batch, n = persistent ? s.chains : s.batch;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, most = std::max(batch, n);
    const auto [h0, h1] = cpu::share(nh, t, parts);  // this thread's hidden units
    const auto [c0, c1] = cpu::share(nv, t, parts);  // the visible units it activates
    const float* W = params_.W();
    const float* hbias = params_.hbias();
    const float* vbias = params_.vbias();
    const Stream stream = Stream::make(s.seed, s.rank, Purpose::gibbs);
    float* v0 = stack_v_.data();
    float* ph0 = stack_h_.data();
    float* vk = v0 + batch * nv;
    float* phk = ph0 + batch * nh;
    float* h = persistent ? chain_h_.data() : h_.data();
    float* pre_h = pre_h_.data() + std::size_t(t) * most * nh;  // this thread's columns only
    float* pre_v = pre_v_.data();
    uint32_t* words = words_.data() + std::size_t(t) * most * std::max(nv, nh);

    // Positive phase: ph0 = sigmoid(v0 W + c); pre_h_ keeps v0 W for the costs. Each
    // block of columns is activated (and, for CD, sampled) right after its product.
    auto positive = [&](std::size_t x, std::size_t y) {
        cpu::add_bias_sigmoid_cols(pre_h, hbias, ph0, batch, nh, x, y);
        if (!persistent) cpu::sample_bernoulli_cols(ph0, h, n, nh, x, y, stream, spec.step, 0);
    };
    if (sparse_hidden_pre(t, batch, v0, shard_binary_, h0, h1, pre_h)) positive(h0, h1);
    else cpu::gemm_cols(false, batch, nv, v0, nv, W, nh, pre_h, nh, h0, h1, positive);
    if (spec.measure) measure_part(t, parts, s, spec);

    for (int j = 0; j < s.k; ++j) {
        const uint32_t draw_v = uint32_t(1 + 2 * j), draw_h = uint32_t(2 + 2 * j);
        if (parts == 1) {
            cpu::philox_words_cols(stream, spec.step, draw_v, n, nv, 0, nv, words);
            if (sparse_visible_pre(t, n, h, 0, nh, pre_v, nv))
                cpu::activate_and_sample_words(pre_v, vbias, nullptr, vk, words, n, nv, 0, nv);
            else
                cpu::gemm_cols(true, n, nh, h, nh, W, nh, pre_v, nv, 0, nv, [&](std::size_t x, std::size_t y) {
                    cpu::activate_and_sample_words(pre_v, vbias, nullptr, vk, words, n, nv, x, y);
                });
        } else {
            visible_partial(t, n, h, true, h0, h1);
            cpu::barrier();
            sum_partials(parts, n, c0, c1);
            cpu::philox_words_cols(stream, spec.step, draw_v, n, nv, c0, c1, words);
            cpu::activate_and_sample_words(pre_v, vbias, nullptr, vk, words, n, nv, c0, c1);
            cpu::barrier();
        }
        cpu::philox_words_cols(stream, spec.step, draw_h, n, nh, h0, h1, words);
        if (sparse_hidden_pre(t, n, vk, true, h0, h1, pre_h))
            cpu::activate_and_sample_words(pre_h, hbias, phk, h, words, n, nh, h0, h1);
        else
            cpu::gemm_cols(false, n, nv, vk, nv, W, nh, pre_h, nh, h0, h1, [&](std::size_t x, std::size_t y) {
                cpu::activate_and_sample_words(pre_h, hbias, phk, h, words, n, nh, x, y);
            });
    }
    gradient_part(t, parts, batch, n);
}

// This thread's share of h W' over its hidden units [h0, h1): all visible columns, into
// its partial buffer. A binary h (a sample, not probabilities) may take the row sums.
void CpuEngine::visible_partial(int t, std::size_t n, const float* h, bool binary, std::size_t h0,
                                std::size_t h1) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    float* part = partial_.data() + std::size_t(t) * std::max(reserved_batch_, reserved_chains_) * nv;
    if (h1 == h0) {
        std::fill(part, part + n * nv, 0.0f);
        return;
    }
    if (binary && sparse_visible_pre(t, n, h, h0, h1, part, nv)) return;
    cpu::gemm_cols(true, n, h1 - h0, h + h0, nh, params_.W() + h0, nh, part, nv, 0, nv,
                   [](std::size_t, std::size_t) {});
}

// pre[r, h0:h1] = v[r, :] W[:, h0:h1] as sums of W's rows at v's nonzeros (scaled by
// them unless v is binary), when they are few enough (cpu::sparse_enough); else false
// and nothing done.
bool CpuEngine::sparse_hidden_pre(int t, std::size_t n, const float* v, bool binary, std::size_t h0,
                                  std::size_t h1, float* pre) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const Listed l = thread_ones(t);
    float* values = binary ? nullptr : l.values;
    if (!cpu::list_sparse_rows(v, n, nv, nv, l.ones, l.count, values)) return false;
    cpu::sum_listed_rows(params_.W() + h0, nh, l.ones, values, nv, l.count, n, pre + h0, nh, h1 - h0);
    return true;
}

// Rows [c0, c1) of grad = [v0; vk]' [ph0 / B; -phk / C] (the rows scaled already) as,
// for each visible unit i, the sum of the hidden rows where column i of [v0; vk] is
// nonzero, scaled by it: when those are few enough; else false and nothing done.
bool CpuEngine::sparse_gradient(int t, std::size_t rows, std::size_t c0, std::size_t c1) {
    const std::size_t nv = shape_.n_visible;
    const float* v = stack_v_.data();
    const Listed l = thread_ones(t);
    std::fill(col_count_.begin() + long(c0), col_count_.begin() + long(c1), 0);
    std::size_t total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t count = cpu::list_nonzeros(v + r * nv + c0, c1 - c0, l.ones, l.values);
        total += count;
        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t i = c0 + l.ones[k], at = i * rows + col_count_[i]++;
            col_rows_[at] = uint32_t(r);
            col_values_[at] = l.values[k];
        }
    }
    if (!cpu::sparse_enough(total, rows * (c1 - c0))) return false;
    // Centering corrects the stored gradient before the update: store it now.
    if (!offsets_.empty())
        store_listed_gradient(c0, c1);
    else
        std::fill(deferred_rows_.begin() + long(c0), deferred_rows_.begin() + long(c1), uint8_t(1));
    return true;
}

// out[r, :] (row stride ldo) = h[r, h0:h1] W[:, h0:h1]' for a binary sample h, as sums of
// rows of W' (this thread's rows of wt_, transposed again after each change of W) when
// h's ones are few enough; else false and nothing done.
bool CpuEngine::sparse_visible_pre(int t, std::size_t n, const float* h, std::size_t h0, std::size_t h1,
                                   float* out, std::size_t ldo) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const Listed l = thread_ones(t);
    if (!cpu::list_sparse_rows(h + h0, n, nh, h1 - h0, l.ones, l.count)) return false;
    float* wt = wt_.data() + h0 * nv;  // row j - h0: hidden unit j's weights
    if (wt_version_[std::size_t(t)] != params_version_) {
        cpu::transpose(nv, h1 - h0, params_.W() + h0, nh, wt, nv);
        wt_version_[std::size_t(t)] = params_version_;
    }
    cpu::sum_listed_rows(wt, nv, l.ones, nullptr, h1 - h0, l.count, n, out, ldo, nv);
    return true;
}

// pre_v_[:, c0:c1] = the threads' partials summed, in thread order.
void CpuEngine::sum_partials(int parts, std::size_t n, std::size_t c0, std::size_t c1) {
    const std::size_t nv = shape_.n_visible, stride = std::max(reserved_batch_, reserved_chains_) * nv;
    for (std::size_t r = 0; r < n; ++r) {
        float* out = pre_v_.data() + r * nv;
        const float* first = partial_.data() + r * nv;
        for (std::size_t c = c0; c < c1; ++c) out[c] = first[c];
        for (int t = 1; t < parts; ++t) {
            const float* in = partial_.data() + std::size_t(t) * stride + r * nv;
            for (std::size_t c = c0; c < c1; ++c) out[c] += in[c];
        }
    }
}

// grad = [v0; vk]' [ph0 / B; -phk / C] and the bias sums. Thread t scales its hidden
// columns of [ph0; phk] and sums them into dc; after a barrier it computes its visible
// rows of the product (contiguous: no cache line of grad is written by two threads)
// and of db. Rows taken as listed sums are only listed (deferred_rows_) unless the model
// is centered: apply_update or gradient() sums them.
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
        // Centered: <h>_data, the data rows' share of dc, rides behind the gradient.
        if (r + 1 == batch && !offsets_.empty()) std::copy(dc + h0, dc + h1, grad_.data() + shape_.total() + h0);
    }
    cpu::barrier();
    std::fill(deferred_rows_.begin() + long(c0), deferred_rows_.begin() + long(c1), uint8_t(0));
    if (c1 > c0 && !sparse_gradient(t, rows, c0, c1))
        cpu::gemm_at_rows(nh, rows, stack_v_.data(), nv, stack_h_.data(), nh, grad_.data(), nh, c0, c1);
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
// t computes its hidden units' share of both for every row; after a barrier, each
// thread completes a block of rows (shares summed in thread order) into pl_row_ and
// xent_row_, which compute_gradient sums in row order.
void CpuEngine::measure_part(int t, int parts, const StepSettings& s, const StepSpec& spec) {
    const std::size_t batch = s.batch, nv = shape_.n_visible, nh = shape_.n_hidden;
    const auto [h0, h1] = cpu::share(nh, t, parts);
    const auto [r0, r1] = row_share(batch, t, parts);
    const float* W = params_.W();
    const float* v0 = stack_v_.data();
    const std::size_t most = std::max(reserved_batch_, reserved_chains_);
    const float* pre = shard_binary_ ? pre_h_.data() + std::size_t(t) * most * nh : pl_pre_.data();
    const std::size_t i = spec.pl_bit;
    double* pl_part = pl_part_.data() + std::size_t(t) * batch;
    for (std::size_t r = 0; r < batch; ++r) {
        if (!shard_binary_ && h1 > h0) {
            float* out = pl_pre_.data() + r * nh + h0;
            if (2 * pl_count_[r] <= nv)
                cpu::sum_rows(W + h0, nh, pl_ones_.data() + r * nv, pl_count_[r], out, h1 - h0);
            else
                gemm(false, false, 1, h1 - h0, nv, pl_x_.data() + r * nv, nv, W + h0, nh, out, nh);
        }
        const float sign = v0[r * nv + i] >= 0.5f ? -1.0f : 1.0f;  // 1 - 2 x_i
        pl_part[r] = h1 > h0 ? cpu::softplus_shift_delta(pre + r * nh + h0, params_.hbias() + h0,
                                                         W + i * nh + h0, sign, h1 - h0)
                             : 0.0;
    }
    // The reconstruction's pre-activation ph0 W' (+ vbias below): the whole of it with one
    // thread, else this thread's partial, summed per row after the barrier.
    if (parts == 1)
        cpu::gemm_cols(true, batch, nh, stack_h_.data(), nh, W, nh, pre_v_.data(), nv, 0, nv,
                       [](std::size_t, std::size_t) {});
    else
        visible_partial(t, batch, stack_h_.data(), false, h0, h1);
    cpu::barrier();
    if (parts > 1)
        for (std::size_t r = r0; r < r1; ++r) sum_partials_row(parts, r);
    for (std::size_t r = r0; r < r1; ++r) {
        const float sign = v0[r * nv + i] >= 0.5f ? -1.0f : 1.0f;
        double delta = 0;
        for (int p = 0; p < parts; ++p) delta += pl_part_[std::size_t(p) * batch + r];
        const double fe_diff = -double(sign) * params_.vbias()[i] - delta;
        pl_row_[r] = -double(nv) * exact::softplus(-fe_diff);
        xent_row_[r] = cpu::bernoulli_xent(pre_v_.data() + r * nv, params_.vbias(), v0 + r * nv, nv);
    }
    cpu::barrier();  // the negative phase overwrites pre_v_, pre_h_ and the partials
}

// Thread t updates a share of the weight rows (those whose gradient it formed, unless the
// thread count changed) and of the biases; rows whose gradient was deferred take it from
// the lists, summed in registers.
void CpuEngine::apply_update(const UpdateRule& rule, float scale) {
    float* p = params_.values.data();
    float* v = velocity_.values.data();
    float* g = grad_.data();
    const std::size_t total = shape_.total(), n_weights = shape_.weight_count();
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const bool centered = !offsets_.empty();
    const float* mu = offsets_.visible.data();
    float* lambda = offsets_.hidden.data();
    if (centered) {  // dW -= mu dc' + db lambda': the centered gradient of W
        store_deferred_gradient();  // rows deferred before offsets were set
        cpu::rank1_update(nv, nh, -1.0f, mu, g + shape_.hbias_offset(), g);
        cpu::rank1_update(nv, nh, -1.0f, g + shape_.vbias_offset(), lambda, g);
    }
    const cpu::UpdateCoefficients u{rule.learning_rate, rule.momentum, scale, rule.weight_decay};
    const std::size_t rows = reserved_batch_ + reserved_chains_;
    cpu::parallel([&](int t, int parts) {
        const auto [c0, c1] = cpu::share(nv, t, parts);
        for_row_runs(c0, c1, [&](std::size_t i0, std::size_t i1, bool deferred) {
            if (deferred)
                cpu::update_with_listed_rows(stack_h_.data(), nh, col_rows_.data() + i0 * rows,
                                             col_values_.data() + i0 * rows, rows, col_count_.data() + i0, i1 - i0,
                                             p + i0 * nh, v + i0 * nh, nh, nh, u);
            else
                cpu::momentum_update(p, v, g, i0 * nh, i1 * nh, n_weights, u);
        });
        const auto [b0, b1] = cpu::share(total - n_weights, t, parts);
        cpu::momentum_update(p, v, g, n_weights + b0, n_weights + b1, n_weights, u);
    });
    ++params_version_;  // deferred rows stay listed: gradient() can still store this step's
    if (!centered) return;
    // The plain biases follow the centered ones: b = b~ - W lambda, c = c~ - W' mu.
    cpu::gemv(false, nv, nh, -1.0f, v, lambda, 1.0f, p + shape_.vbias_offset());
    cpu::gemv(true, nv, nh, -1.0f, v, mu, 1.0f, p + shape_.hbias_offset());
    const float* data_h = g + total;
    for (std::size_t j = 0; j < nh; ++j) lambda[j] += rule.offset_rate * (scale * data_h[j] - lambda[j]);
}

// The deferred weight rows of grad_ summed from their lists and stored, each thread a
// share of the rows.
void CpuEngine::store_deferred_gradient() {
    if (std::find(deferred_rows_.begin(), deferred_rows_.end(), uint8_t(1)) == deferred_rows_.end()) return;
    cpu::parallel([&](int t, int parts) {
        const auto [c0, c1] = cpu::share(shape_.n_visible, t, parts);
        for_row_runs(c0, c1, [&](std::size_t i0, std::size_t i1, bool deferred) {
            if (deferred) store_listed_gradient(i0, i1);
        });
    });
    std::fill(deferred_rows_.begin(), deferred_rows_.end(), uint8_t(0));
}

// Weight rows [i0, i1) of grad_ as the sums of their listed rows of [ph0 / B; -phk / C].
void CpuEngine::store_listed_gradient(std::size_t i0, std::size_t i1) {
    const std::size_t nh = shape_.n_hidden, rows = reserved_batch_ + reserved_chains_;
    cpu::sum_listed_rows(stack_h_.data(), nh, col_rows_.data() + i0 * rows, col_values_.data() + i0 * rows, rows,
                         col_count_.data() + i0, i1 - i0, grad_.data() + i0 * nh, nh, nh);
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

// Split like a training step's sweeps: thread t computes and samples its columns. W
// does not change while sampling, so W' is transposed once for the sparse samples'
// products (sums of rows, as in a training step).
void CpuEngine::gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                              uint64_t first_step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    std::vector<float> pre_h(n * nh), prob_h(n * nh), h(n * nh), pre_v(n * nv), wt(nv * nh);
    const float* W = params_.W();
    cpu::transpose(nv, nh, W, nh, wt.data(), nv);
    cpu::adopt_blas_threads();
    cpu::parallel([&](int t, int parts) {
        const auto [h0, h1] = cpu::share(nh, t, parts);
        const auto [c0, c1] = cpu::share(nv, t, parts);
        std::vector<uint32_t> nonzeros(n * std::max(nv, nh));
        std::vector<float> values(n * nv);
        std::vector<std::size_t> counts(n);
        auto list = [&](const float* x, std::size_t cols, float* values_or_null) {
            return cpu::list_sparse_rows(x, n, cols, cols, nonzeros.data(), counts.data(), values_or_null);
        };
        for (int s = 0; s < steps; ++s) {
            const uint64_t step = first_step + uint64_t(s);
            auto hidden = [&](std::size_t x, std::size_t y) {
                cpu::activate_and_sample_cols(pre_h.data(), params_.hbias(), prob_h.data(), h.data(), n, nh, x, y,
                                              stream, step, 0);
            };
            if (h1 > h0 && list(v, nv, values.data())) {  // v: a sample, or the starting rows (scaled sums)
                cpu::sum_listed_rows(W + h0, nh, nonzeros.data(), values.data(), nv, counts.data(), n,
                                     pre_h.data() + h0, nh, h1 - h0);
                hidden(h0, h1);
            } else {
                cpu::gemm_cols(false, n, nv, v, nv, W, nh, pre_h.data(), nh, h0, h1, hidden);
            }
            cpu::barrier();
            auto visible = [&](std::size_t x, std::size_t y) {
                cpu::activate_and_sample_cols(pre_v.data(), params_.vbias(), mean, v, n, nv, x, y, stream, step, 1);
            };
            if (c1 > c0 && list(h.data(), nh, nullptr)) {
                cpu::sum_listed_rows(wt.data() + c0, nv, nonzeros.data(), nullptr, nh, counts.data(), n,
                                     pre_v.data() + c0, nv, c1 - c0);
                visible(c0, c1);
            } else {
                cpu::gemm_cols(true, n, nh, h.data(), nh, W, nh, pre_v.data(), nv, c0, c1, visible);
            }
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
