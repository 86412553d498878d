// The whole-chain kernel's fused step (kernels/gibbs_step_phases.hpp: the batch's
// gather, positive phase and monitoring before the sweeps) run on the CPU by the
// emulation of chain_emulation.hpp. Weights that are multiples of 1/64 and data that are
// multiples of 1/4 make every pre-activation exact in any order: the emulation must
// equal a plain step bit for bit (the monitoring sums to rounding), and leave what the
// CPU engine's step leaves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "chain_emulation.hpp"
#include "engine/engine.hpp"
#include "test_models.hpp"

using namespace rbm;
using namespace rbm::test;

namespace {

// The fused step's outputs: the batch, ph0 / B, the chain (phk times -1 / C), the sums.
struct StepResult {
    std::vector<float> v0, ph0;
    ChainResult chain;
    double sums[3] = {0, 0, 0};
};

struct StepCase {
    RbmShape shape;
    int batch, chains, clusters, k;
    bool cd, measure, binary;
};

// Rows whose values are multiples of 1/4 (or 0/1): with dyadic weights every
// pre-activation is exact.
std::vector<float> quarter_rows(std::size_t n, std::size_t cols, bool binary, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> quarter(0, 4);
    std::vector<float> rows(n * cols);
    for (float& x : rows) x = binary ? float(quarter(gen) >= 2) : float(quarter(gen)) / 4.0f;
    return rows;
}

// The fused step computed plainly, unit by unit, with the kernel's draws and functions.
StepResult plain_step(const ParamBuffer& p, const StepCase& c, const std::vector<float>& shard,
                      const std::vector<uint32_t>& order, uint64_t cursor, const std::vector<float>& h, Stream key,
                      uint64_t step) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden, b = std::size_t(c.batch);
    StepResult out;
    out.v0.resize(b * nv);
    out.ph0.resize(b * nh);
    std::vector<float> prob(b * nh), start = h;
    for (std::size_t r = 0; r < b; ++r)
        std::copy_n(shard.begin() + long(order[cursor + r] * nv), nv, out.v0.begin() + long(r * nv));
    // x W for rows x (float, in unit order: exact here).
    auto hidden_pre = [&](const std::vector<float>& x, std::size_t r, std::size_t j) {
        float pre = 0.0f;
        for (std::size_t i = 0; i < nv; ++i) pre += x[r * nv + i] * p.W()[i * nh + j];
        return pre;
    };
    for (std::size_t r = 0; r < b; ++r)
        for (std::size_t j = 0; j < nh; ++j) {
            const float pj = chain::chain_sigmoid(hidden_pre(out.v0, r, j) + p.hbias()[j]);
            prob[r * nh + j] = pj;
            out.ph0[r * nh + j] = pj * (1.0f / float(b));
            if (c.cd) start[r * nh + j] = uniform_at(key, step, 0, r * nh + j) < pj ? 1.0f : 0.0f;
        }
    if (c.measure) {
        std::vector<float> x(out.v0);
        for (float& e : x) e = e >= 0.5f ? 1.0f : 0.0f;
        const std::size_t i = step % nv;
        for (std::size_t r = 0; r < b; ++r) {
            const float sign = x[r * nv + i] >= 0.5f ? -1.0f : 1.0f;
            double delta = 0.0;
            for (std::size_t j = 0; j < nh; ++j) {
                const float a = hidden_pre(x, r, j) + p.hbias()[j];
                delta += double(chain::chain_softplus(a + sign * p.W()[i * nh + j]) - chain::chain_softplus(a));
            }
            out.sums[0] += -double(nv) * chain::chain_softplus(-(-double(sign) * double(p.vbias()[i]) - delta));
            for (std::size_t u = 0; u < nv; ++u) {
                float pre = 0.0f;
                for (std::size_t j = 0; j < nh; ++j) pre += prob[r * nh + j] * p.W()[u * nh + j];
                const float a = pre + p.vbias()[u];
                out.sums[1] += double(chain::chain_softplus(a) - out.v0[r * nv + u] * a);
            }
        }
        out.sums[2] = double(b);
    }
    out.chain = plain_chain(p, start, std::size_t(c.chains), c.k, key, step);
    for (float& e : out.chain.phk) e *= -1.0f / float(c.chains);
    return out;
}

// The kernel's fused step, emulated in both orders (which must agree but for the
// order of the sums' additions).
template <int R, int CS>
StepResult emulated_step(const ParamBuffer& p, const StepCase& c, const std::vector<float>& shard,
                         const std::vector<uint32_t>& order, const uint64_t& cursor, const std::vector<float>& h,
                         Stream key, const uint64_t& step) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    StepResult runs[2];
    for (int reversed = 0; reversed < 2; ++reversed) {
        StepResult& out = runs[reversed];
        out.v0.assign(std::size_t(c.batch) * nv, -1.0f);
        out.ph0.assign(std::size_t(c.batch) * nh, -1.0f);
        // CD's chains start from the batch: h must not be read.
        out.chain = {c.cd ? std::vector<float>(h.size(), std::nanf("")) : h,
                     std::vector<float>(std::size_t(c.chains) * nv, -1.0f),
                     std::vector<float>(std::size_t(c.chains) * nh, -1.0f)};
        chain::Args a = chain_args(p, out.chain, c.chains, c.clusters, CS, c.k, key, step);
        a.shard = shard.data();
        a.order = order.data();
        a.cursor_ptr = &cursor;
        a.v0 = out.v0.data();
        a.ph0 = out.ph0.data();
        a.sums = out.sums;
        a.batch = c.batch;
        a.ph0_scale = 1.0f / float(c.batch);
        a.phk_scale = -1.0f / float(c.chains);
        a.cd = c.cd;
        a.measure = c.measure;
        a.binary = c.binary;
        emulate<R, CS>(a, step, reversed == 1);
    }
    EXPECT_TRUE(runs[0].chain == runs[1].chain && runs[0].v0 == runs[1].v0 && runs[0].ph0 == runs[1].ph0)
        << "the blocks' or threads' order changed the result";
    for (int s = 0; s < 3; ++s) EXPECT_NEAR(runs[0].sums[s], runs[1].sums[s], 1e-9 * std::abs(runs[0].sums[s]));
    return runs[0];
}

struct StepInputs {
    ParamBuffer params;
    std::vector<float> shard, h;
    std::vector<uint32_t> order;
    uint64_t cursor;
};

StepInputs step_inputs(const StepCase& c, unsigned seed) {
    const std::size_t rows = std::size_t(3 * c.batch);
    StepInputs in{test::dyadic_params(c.shape, test::dyadic_spread(c.shape), seed),
                  quarter_rows(rows, c.shape.n_visible, c.binary, seed + 1),
                  test::random_binary_rows(std::size_t(c.chains), c.shape.n_hidden, seed + 2),
                  std::vector<uint32_t>(rows), uint64_t(c.batch) + 1};
    std::iota(in.order.begin(), in.order.end(), 0u);
    std::shuffle(in.order.begin(), in.order.end(), std::mt19937(seed + 3));
    return in;
}

template <int R, int CS>
void check_step_against_plain(const StepCase& c) {
    SCOPED_TRACE(testing::Message() << c.shape.n_visible << "x" << c.shape.n_hidden << ", batch " << c.batch << ", "
                                    << c.chains << " chains over " << c.clusters << " clusters of " << CS << ", k "
                                    << c.k << (c.cd ? ", CD" : ", PCD") << (c.measure ? ", measured" : "")
                                    << (c.binary ? ", binary" : ", quarters"));
    const StepInputs in = step_inputs(c, 11);
    const Stream key = Stream::make(5, 3, Purpose::gibbs);
    const uint64_t step = 1234;
    const StepResult want = plain_step(in.params, c, in.shard, in.order, in.cursor, in.h, key, step);
    const StepResult got = emulated_step<R, CS>(in.params, c, in.shard, in.order, in.cursor, in.h, key, step);
    EXPECT_EQ(count_differences(want.v0, got.v0), 0u);
    EXPECT_EQ(count_differences(want.ph0, got.ph0), 0u);
    EXPECT_EQ(count_differences(want.chain.h, got.chain.h), 0u);
    EXPECT_EQ(count_differences(want.chain.vk, got.chain.vk), 0u);
    EXPECT_EQ(count_differences(want.chain.phk, got.chain.phk), 0u);
    expect_mixed(got.chain.h);
    // The pseudo-likelihood's terms are the same floats summed in another order; the
    // reconstruction's pre-activations (from probabilities) are rounded in another order.
    EXPECT_NEAR(got.sums[0], want.sums[0], 1e-9 * std::abs(want.sums[0]));
    EXPECT_NEAR(got.sums[1], want.sums[1], 1e-5 * std::abs(want.sums[1]));
    EXPECT_EQ(got.sums[2], want.sums[2]);
    if (c.measure) {
        EXPECT_LT(want.sums[0], 0.0);
    }
}

}  // namespace

TEST(GibbsStepPhases, FusedStepEqualsAPlainStep) {
    check_step_against_plain<2, 16>({{96, 40}, 16, 16, 8, 2, false, true, false});
    check_step_against_plain<3, 16>({{786, 102}, 12, 20, 8, 2, false, true, true});   // batch < chains
    check_step_against_plain<3, 8>({{786, 102}, 20, 7, 7, 1, false, true, false});    // batch > chains
    check_step_against_plain<1, 8>({{33, 17}, 5, 5, 5, 1, true, true, false});       // CD
    check_step_against_plain<2, 16>({{50, 10}, 16, 16, 8, 2, true, false, true});     // CD, not measured
}

TEST(GibbsStepPhases, FusedStepAtTheTutorialsShape) {
    check_step_against_plain<3, 16>({{784, 500}, 20, 20, 8, 2, false, true, false});
}

// The fused step leaves what the CPU engine's step does: the chains, the gradient
// formed from its outputs, and the monitoring sums.
namespace {

void check_step_against_cpu(const StepCase& c) {
    SCOPED_TRACE(testing::Message() << (c.cd ? "CD" : "PCD") << (c.binary ? ", binary" : ", quarters"));
    const StepInputs in = step_inputs(c, 21);
    const std::size_t nv = c.shape.n_visible, nh = c.shape.n_hidden;
    auto cpu = make_cpu_engine(c.shape);
    cpu->set_params(in.params);
    cpu->set_velocity(ParamBuffer(c.shape));
    cpu->set_training_shard(test::dataset_of(in.shard, nv));
    cpu->set_chains(std::vector<uint8_t>(in.h.begin(), in.h.end()));
    cpu->set_epoch_order(in.order);
    const StepSettings s{.method = c.cd ? Method::cd : Method::pcd, .k = c.k, .batch = std::size_t(c.batch),
                         .chains = std::size_t(c.chains), .seed = 6, .rank = 1};
    const uint64_t step = 300;
    cpu->compute_gradient(in.order.data() + in.cursor, s, StepSpec{.step = step, .pl_bit = step % nv});
    const StepResult got = emulated_step<2, 16>(in.params, c, in.shard, in.order, in.cursor, in.h,
                                                Stream::make(6, 1, Purpose::gibbs), step);
    if (!c.cd) {
        const std::vector<uint8_t> cpu_chains = cpu->get_chains();
        EXPECT_EQ(count_differences(std::vector<float>(cpu_chains.begin(), cpu_chains.end()), got.chain.h), 0u);
    }
    const GradientView g = cpu->gradient();
    const std::size_t b = std::size_t(c.batch), ch = std::size_t(c.chains);
    double worst = 0;
    for (std::size_t i = 0; i < nv; ++i) {
        for (std::size_t j = 0; j < nh; ++j) {
            double dw = 0;
            for (std::size_t r = 0; r < b; ++r) dw += double(got.v0[r * nv + i]) * got.ph0[r * nh + j];
            for (std::size_t r = 0; r < ch; ++r) dw += double(got.chain.vk[r * nv + i]) * got.chain.phk[r * nh + j];
            worst = std::max(worst, std::abs(dw - g.data[i * nh + j]));
        }
        double db = 0;
        for (std::size_t r = 0; r < b; ++r) db += double(got.v0[r * nv + i]) / double(b);
        for (std::size_t r = 0; r < ch; ++r) db -= double(got.chain.vk[r * nv + i]) / double(ch);
        worst = std::max(worst, std::abs(db - g.data[nv * nh + i]));
    }
    for (std::size_t j = 0; j < nh; ++j) {
        double dc = 0;
        for (std::size_t r = 0; r < b; ++r) dc += got.ph0[r * nh + j];
        for (std::size_t r = 0; r < ch; ++r) dc += got.chain.phk[r * nh + j];
        worst = std::max(worst, std::abs(dc - g.data[nv * nh + nv + j]));
    }
    EXPECT_LT(worst, 1e-5);
    const MetricSums m = cpu->take_metric_sums();
    EXPECT_NEAR(got.sums[0], m.pseudo_likelihood, 1e-5 * std::abs(m.pseudo_likelihood));
    EXPECT_NEAR(got.sums[1], m.reconstruction_xent, 1e-5 * std::abs(m.reconstruction_xent));
    EXPECT_EQ(got.sums[2], m.examples);
}

}  // namespace

TEST(GibbsStepPhases, FusedStepEqualsTheCpuEngines) {
    check_step_against_cpu({{120, 36}, 12, 16, 8, 3, false, true, false});
    check_step_against_cpu({{120, 36}, 16, 16, 8, 2, false, true, true});
    check_step_against_cpu({{120, 36}, 16, 16, 8, 1, true, true, false});
}
