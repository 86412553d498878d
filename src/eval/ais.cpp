// AIS and RAISE for Bernoulli RBMs on the CPU (formulas and references: ais.hpp).
#include "eval/ais.hpp"
#include "eval/series.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "engine/cpu_kernels.hpp"
#include "model/exact.hpp"
#include "random/streams.hpp"
#include "util/check.hpp"

namespace rbm::eval {
namespace {

inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
inline float sigmoidf(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// Row-major C[m, n] = op(A) op(B) (beta 0).
void gemm(bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f,
                a, int(k), b, int(trans_b ? k : n), 0.0f, c, int(n));
}

constexpr uint64_t kMaxChainId = (uint64_t(1) << 24) - 1;  // the rank field of a Philox key

class CpuAnnealingChains final : public AnnealingChains {
public:
    CpuAnnealingChains(const ParamBuffer& params, const BaseModel& base, uint32_t seed, std::vector<ChainId> chains)
        : p_(params), nv_(params.shape.n_visible), nh_(params.shape.n_hidden), count_(chains.size()), seed_(seed),
          chains_(std::move(chains)) {
        RBM_CHECK(base.vbias.size() == nv_, "base model has " << base.vbias.size() << " visible units, the RBM "
                                                              << nv_);
        check_chain_ids(chains_);
        base_b_ = base.vbias;
        b_minus_base_.resize(nv_);
        for (std::size_t i = 0; i < nv_; ++i) b_minus_base_[i] = double(p_.vbias()[i]) - base_b_[i];
        x_.assign(count_ * nv_, 0.0f);
        a_.assign(count_ * nh_, 0.0f);
        h_.assign(count_ * nh_, 0.0f);
        pre_v_.assign(count_ * nv_, 0.0f);
        wt_.assign(nv_ * nh_, 0.0f);
        cpu::transpose(nv_, nh_, p_.W(), nh_, wt_.data(), nv_);
        nonzeros_.assign(std::max(nv_, nh_), 0u);
        dense_in_.assign(count_ * std::max(nv_, nh_), 0.0f);
        dense_out_.assign(count_ * std::max(nv_, nh_), 0.0f);
        vb_.assign(count_, 0.0);
        acc_.assign(count_, 0.0);
    }

    std::size_t size() const override { return count_; }

    void start_from_base() override {
        for (std::size_t r = 0; r < count_; ++r) {
            const Stream s = stream(r);
            const uint32_t draw = draw_index(r, AisDraw::base);
            float* x = x_.data() + r * nv_;
            for (std::size_t i0 = 0; i0 < nv_; i0 += 4) {
                const auto u = s.block(0, draw, uint32_t(i0 >> 2));
                for (std::size_t q = 0; q < 4 && i0 + q < nv_; ++q)
                    x[i0 + q] = word_to_uniform(u.v[q]) < float(exact::sigmoid(base_b_[i0 + q])) ? 1.0f : 0.0f;
            }
        }
        std::fill(acc_.begin(), acc_.end(), 0.0);
        refresh_hidden_input();
    }

    void start_from_rows(const float* rows) override {
        for (std::size_t e = 0; e < count_ * nv_; ++e) {
            RBM_CHECK(rows[e] == 0.0f || rows[e] == 1.0f, "annealing chains start from binary states");
            x_[e] = rows[e];
        }
        std::fill(acc_.begin(), acc_.end(), 0.0);
        refresh_hidden_input();
    }

    // log f_β1(x) - log f_β0(x) = (β1 - β0) x.(b - b_A) + sum_j [softplus(β1 a_j) - softplus(β0 a_j)],
    // a = c + xW; in double from the float pre-activations. With x0 = β0 a, δ = (β1 - β0) a:
    // softplus(x0 + δ) - softplus(x0) = log1p(σ(x0) expm1(δ)), three transcendentals instead
    // of four (log1p_of_step_is_exact says where not).
    void add_log_ratio(double beta_to, double beta_from) override {
        const double d_beta = beta_to - beta_from;
        for (std::size_t r = 0; r < count_; ++r) {
            const float* a = a_.data() + r * nh_;
            double s = 0;
            for (std::size_t j = 0; j < nh_; ++j) {
                const double aj = a[j], x0 = beta_from * aj, y = exact::sigmoid(x0) * expm1_series(d_beta * aj);
                s += log1p_of_step_is_exact(y) ? log1p_series(y) : softplus(beta_to * aj) - softplus(x0);
            }
            acc_[r] += s + d_beta * vb_[r];
        }
    }

    void gibbs_sweep(double beta, uint64_t step, AisDraw hidden_kind, AisDraw visible_kind) override {
        // h_j ~ σ(β (c_j + x.W[:, j]))
        for (std::size_t r = 0; r < count_; ++r) {
            const Stream s = stream(r);
            const uint32_t draw_h = draw_index(r, hidden_kind);
            const float* a = a_.data() + r * nh_;
            float* h = h_.data() + r * nh_;
            for (std::size_t j0 = 0; j0 < nh_; j0 += 4) {
                const auto u = s.block(step, draw_h, uint32_t(j0 >> 2));
                for (std::size_t q = 0; q < 4 && j0 + q < nh_; ++q)
                    h[j0 + q] = word_to_uniform(u.v[q]) < sigmoidf(float(beta * a[j0 + q])) ? 1.0f : 0.0f;
            }
        }
        // x_i ~ σ((1-β) b_A_i + β (b_i + W[i, :].h))
        products(h_.data(), nh_, wt_.data(), true, pre_v_.data(), nv_);
        const float* b = p_.vbias();
        for (std::size_t r = 0; r < count_; ++r) {
            const Stream s = stream(r);
            const uint32_t draw_v = draw_index(r, visible_kind);
            const float* pre = pre_v_.data() + r * nv_;
            float* x = x_.data() + r * nv_;
            for (std::size_t i0 = 0; i0 < nv_; i0 += 4) {
                const auto u = s.block(step, draw_v, uint32_t(i0 >> 2));
                for (std::size_t q = 0; q < 4 && i0 + q < nv_; ++q) {
                    const std::size_t i = i0 + q;
                    const double z = (1.0 - beta) * base_b_[i] + beta * (double(b[i]) + double(pre[i]));
                    x[i] = word_to_uniform(u.v[q]) < sigmoidf(float(z)) ? 1.0f : 0.0f;
                }
            }
        }
        refresh_hidden_input();
    }

    std::vector<double> accumulated() const override { return acc_; }
    std::vector<float> visible() const override { return x_; }

private:
    Stream stream(std::size_t r) const { return Stream::make(seed_, chains_[r].index, Purpose::ais); }
    uint32_t draw_index(std::size_t r, AisDraw kind) const {
        return (chains_[r].seed_index << 4) | uint32_t(kind);
    }

    // out [count, n_out] = in [count, n_in] B for binary rows: a row at most 30% ones as the
    // sum of the rows of `rows_of_b` ([n_in, n_out]) at its ones (its result then depends
    // on that row alone); the others in one sgemm, with B = W' (trans_w) or W. The choice
    // is the row's own, so a batch's results do not depend on how batches are split.
    void products(const float* in, std::size_t n_in, const float* rows_of_b, bool trans_w, float* out,
                  std::size_t n_out) {
        std::vector<std::size_t>& dense = dense_rows_;
        dense.clear();
        for (std::size_t r = 0; r < count_; ++r) {
            const std::size_t ones = cpu::list_nonzeros(in + r * n_in, n_in, nonzeros_.data());
            if (cpu::sparse_enough(ones, n_in))
                cpu::sum_rows(rows_of_b, n_out, nonzeros_.data(), ones, out + r * n_out, n_out);
            else
                dense.push_back(r);
        }
        if (dense.empty()) return;
        if (dense.size() == count_) {
            gemm(trans_w, count_, n_out, n_in, in, p_.W(), out);
            return;
        }
        for (std::size_t k = 0; k < dense.size(); ++k)
            std::copy(in + dense[k] * n_in, in + (dense[k] + 1) * n_in, dense_in_.data() + k * n_in);
        gemm(trans_w, dense.size(), n_out, n_in, dense_in_.data(), p_.W(), dense_out_.data());
        for (std::size_t k = 0; k < dense.size(); ++k)
            std::copy(dense_out_.data() + k * n_out, dense_out_.data() + (k + 1) * n_out, out + dense[k] * n_out);
    }

    // a = c + xW (row sums or one sgemm, see products) and vb_r = x_r.(b - b_A) in double.
    void refresh_hidden_input() {
        products(x_.data(), nv_, p_.W(), false, a_.data(), nh_);
        const float* c = p_.hbias();
        for (std::size_t r = 0; r < count_; ++r) {
            float* a = a_.data() + r * nh_;
            for (std::size_t j = 0; j < nh_; ++j) a[j] += c[j];
            const float* x = x_.data() + r * nv_;
            double s = 0;
            for (std::size_t i = 0; i < nv_; ++i)
                if (x[i] != 0.0f) s += b_minus_base_[i];
            vb_[r] = s;
        }
    }

    const ParamBuffer& p_;
    std::size_t nv_, nh_, count_;
    uint32_t seed_;
    std::vector<ChainId> chains_;
    std::vector<double> base_b_, b_minus_base_, vb_, acc_;
    std::vector<float> x_, a_, h_, pre_v_;
    std::vector<float> wt_;  // W' [nh, nv]: its rows are the hidden units' weights
    std::vector<uint32_t> nonzeros_;
    std::vector<std::size_t> dense_rows_;
    std::vector<float> dense_in_, dense_out_;  // the rows too dense for row sums, gathered
};

void check_schedule(const std::vector<double>& betas) {
    RBM_CHECK(betas.size() >= 2 && betas.front() == 0.0 && betas.back() == 1.0,
              "an annealing schedule runs from 0 to 1");
    for (std::size_t k = 1; k < betas.size(); ++k)
        RBM_CHECK(betas[k] > betas[k - 1], "an annealing schedule increases strictly (at " << k << ")");
}

}  // namespace

BaseModel base_model_from_biases(std::vector<double> vbias, std::size_t n_hidden) {
    BaseModel m;
    m.vbias = std::move(vbias);
    m.n_hidden = n_hidden;
    m.log_z = double(n_hidden) * std::log(2.0);
    for (double b : m.vbias) m.log_z += softplus(b);
    return m;
}

BaseModel base_rate_model(const std::vector<double>& column_sums, std::size_t n_rows, std::size_t n_hidden,
                          double alpha) {
    RBM_CHECK(alpha > 0, "base-rate smoothing must be positive");
    std::vector<double> b(column_sums.size());
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double p = (column_sums[i] + alpha) / (double(n_rows) + 2 * alpha);
        b[i] = std::log(p) - std::log1p(-p);
    }
    return base_model_from_biases(std::move(b), n_hidden);
}

std::vector<double> beta_schedule(std::size_t intervals) {
    RBM_CHECK(intervals >= 3, "an annealing schedule needs at least 3 intervals, got " << intervals);
    const double n = double(intervals);
    std::size_t n1 = std::max<std::size_t>(1, std::size_t(std::llround(n * 500.0 / 14500.0)));
    std::size_t n2 = std::max<std::size_t>(1, std::size_t(std::llround(n * 4000.0 / 14500.0)));
    while (n1 + n2 + 1 > intervals) (n2 > 1 ? n2 : n1) -= 1;
    const std::size_t n3 = intervals - n1 - n2;
    std::vector<double> betas;
    betas.reserve(intervals + 1);
    for (std::size_t i = 0; i <= n1; ++i) betas.push_back(0.5 * double(i) / double(n1));
    for (std::size_t i = 1; i <= n2; ++i) betas.push_back(0.5 + 0.4 * double(i) / double(n2));
    for (std::size_t i = 1; i <= n3; ++i) betas.push_back(0.9 + 0.1 * double(i) / double(n3));
    betas.back() = 1.0;
    return betas;
}

void check_chain_ids(const std::vector<ChainId>& chains) {
    RBM_CHECK(!chains.empty(), "no annealing chains");
    for (const ChainId& c : chains) {
        RBM_CHECK(c.index <= kMaxChainId, "AIS chain index " << c.index << " exceeds " << kMaxChainId);
        RBM_CHECK(c.seed_index < (1u << 27), "seed index " << c.seed_index << " is too large");
    }
}

std::vector<ChainId> chain_ids(uint32_t seed_index, uint64_t first, std::size_t count) {
    RBM_CHECK(first + count <= kMaxChainId + 1, "AIS chain indices up to " << first + count - 1 << " exceed "
                                                                          << kMaxChainId);
    std::vector<ChainId> ids(count);
    for (std::size_t r = 0; r < count; ++r) ids[r] = {seed_index, uint32_t(first + r)};
    return ids;
}

std::unique_ptr<AnnealingChains> make_cpu_annealing_chains(const ParamBuffer& params, const BaseModel& base,
                                                           uint32_t seed, std::vector<ChainId> chains) {
    return std::make_unique<CpuAnnealingChains>(params, base, seed, std::move(chains));
}

namespace {
// The chains of one batch: chains[done, done + n) from `make`, or the CPU's.
std::unique_ptr<AnnealingChains> batch_of(const ParamBuffer& params, const BaseModel& base, uint32_t seed,
                                          const std::vector<ChainId>& chains, std::size_t done, std::size_t n,
                                          const ChainsFactory& make) {
    std::vector<ChainId> ids(chains.begin() + std::ptrdiff_t(done), chains.begin() + std::ptrdiff_t(done + n));
    return make ? make(seed, std::move(ids)) : make_cpu_annealing_chains(params, base, seed, std::move(ids));
}

// OpenBLAS's thread count for the life of the guard, then the one before.
struct BlasThreads {
    explicit BlasThreads(int n) : before(openblas_get_num_threads()) { openblas_set_num_threads(n); }
    ~BlasThreads() { openblas_set_num_threads(before); }
    int before;
};

// Runs batch(i) for i in [0, count), each batch's results kept by the caller under i. On
// the CPU the eval's threads (OpenBLAS's count, set from --threads) take whole batches,
// each product through one-thread OpenBLAS: a batch's arithmetic is then the same for any
// thread and rank count. (With OpenBLAS's own threads, its Haswell and Zen kernels round a
// row differently with where the thread boundaries fall, and a run would depend on
// --threads.) Chains from a factory (the GPU's) run one batch after another.
void for_each_batch(std::size_t count, bool on_cpu, const std::function<void(std::size_t)>& batch) {
    if (!on_cpu) {
        for (std::size_t i = 0; i < count; ++i) batch(i);
        return;
    }
    const std::size_t workers = std::min<std::size_t>(count, std::size_t(std::max(1, openblas_get_num_threads())));
    BlasThreads one(1);
    std::atomic<std::size_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto work = [&] {
        try {
            for (std::size_t i = next++; i < count; i = next++) batch(i);
        } catch (...) {
            const std::lock_guard<std::mutex> lock(failure_mutex);
            if (!failure) failure = std::current_exception();
            next = count;
        }
    };
    std::vector<std::thread> helpers;
    for (std::size_t w = 1; w < workers; ++w) helpers.emplace_back(work);
    work();
    for (auto& t : helpers) t.join();
    if (failure) std::rethrow_exception(failure);
}

std::size_t batch_count(std::size_t chains, std::size_t batch) { return (chains + batch - 1) / batch; }
}  // namespace

std::vector<double> forward_ais_log_weights(const ParamBuffer& params, const BaseModel& base,
                                            const std::vector<double>& betas, uint32_t seed,
                                            const std::vector<ChainId>& chains, std::size_t batch,
                                            const ChainsFactory& make) {
    check_schedule(betas);
    RBM_CHECK(batch > 0, "AIS batch must be positive");
    const std::size_t K = betas.size() - 1;
    std::vector<double> log_w(chains.size());
    for_each_batch(batch_count(chains.size(), batch), !make, [&](std::size_t i) {
        const std::size_t done = i * batch, n = std::min(batch, chains.size() - done);
        auto batch_chains = batch_of(params, base, seed, chains, done, n, make);
        batch_chains->start_from_base();  // x_0 ~ p_A
        for (std::size_t step = 1; step <= K; ++step) {
            batch_chains->add_log_ratio(betas[step], betas[step - 1]);  // log f_k(x_{k-1}) - log f_{k-1}(x_{k-1})
            if (step < K)
                batch_chains->gibbs_sweep(betas[step], step, AisDraw::forward_hidden, AisDraw::forward_visible);
        }
        const std::vector<double> acc = batch_chains->accumulated();
        std::copy(acc.begin(), acc.end(), log_w.begin() + std::ptrdiff_t(done));
    });
    return log_w;
}

std::vector<double> reverse_ais_log_z(const ParamBuffer& params, const BaseModel& base,
                                      const std::vector<double>& betas, uint32_t seed,
                                      const std::vector<ChainId>& chains, const float* start_rows,
                                      std::size_t batch, const ChainsFactory& make) {
    check_schedule(betas);
    RBM_CHECK(batch > 0, "AIS batch must be positive");
    const std::size_t K = betas.size() - 1, nv = params.shape.n_visible;
    std::vector<double> log_z(chains.size());
    for_each_batch(batch_count(chains.size(), batch), !make, [&](std::size_t i) {
        const std::size_t done = i * batch, n = std::min(batch, chains.size() - done);
        auto batch_chains = batch_of(params, base, seed, chains, done, n, make);
        batch_chains->start_from_rows(start_rows + done * nv);  // x_K = v
        for (std::size_t step = K; step >= 1; --step) {
            // x_{k-1} ~ T_k(x_k), then log f_k(x_{k-1}) - log f_{k-1}(x_{k-1})
            batch_chains->gibbs_sweep(betas[step], step, AisDraw::reverse_hidden, AisDraw::reverse_visible);
            batch_chains->add_log_ratio(betas[step], betas[step - 1]);
        }
        const std::vector<double> acc = batch_chains->accumulated();
        for (std::size_t r = 0; r < n; ++r) log_z[done + r] = base.log_z + acc[r];
    });
    return log_z;
}

double log_mean_exp(const std::vector<double>& x) {
    RBM_CHECK(!x.empty(), "log_mean_exp of nothing");
    const double top = *std::max_element(x.begin(), x.end());
    if (!std::isfinite(top)) return top;
    double s = 0;
    for (double v : x) s += std::exp(v - top);
    return top + std::log(s / double(x.size()));
}

WeightSummary summarize_log_weights(const std::vector<double>& log_w) {
    RBM_CHECK(!log_w.empty(), "no importance weights to summarise");
    WeightSummary out;
    out.n = log_w.size();
    const double top = *std::max_element(log_w.begin(), log_w.end());
    RBM_CHECK(std::isfinite(top), "an importance weight is not finite");
    double s1 = 0, s2 = 0;
    for (double v : log_w) {
        const double w = std::exp(v - top);
        s1 += w;
        s2 += w * w;
    }
    const double n = double(out.n), mean = s1 / n;
    out.log_mean = top + std::log(mean);
    out.ess = s1 * s1 / s2;
    const double inf = std::numeric_limits<double>::infinity();
    if (out.n < 2) {
        out.log_lower = -inf;
        out.log_upper = inf;
        return out;
    }
    double ss = 0;
    for (double v : log_w) {
        const double d = std::exp(v - top) - mean;
        ss += d * d;
    }
    const double sigma_mean = std::sqrt(ss / (n - 1) / n);
    out.log_lower = mean > 3 * sigma_mean ? top + std::log(mean - 3 * sigma_mean) : -inf;
    out.log_upper = top + std::log(mean + 3 * sigma_mean);
    return out;
}

}  // namespace rbm::eval
