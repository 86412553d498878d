// The whole-chain Gibbs kernel's program (kernels/gibbs_chain_phases.hpp), run on the
// CPU: cluster by cluster, each phase for every block and thread, a peer's shared
// memory being another block's buffer, each cluster's shared memory filled with NaN
// first (a read of anything not loaded spoils the result). Between cluster barriers a
// block runs all its phases before the next block starts, as a GPU may run them, once
// with blocks and threads in order and once reversed: a phase that reads a peer's
// memory without a cluster barrier before it, or another thread's work of the same
// phase, gives another result. The weights are multiples of 1/64 and the data
// multiples of 1/4 (test::dyadic_params), so every pre-activation is exact in float in
// any order: the emulation must equal a plain computation with the same draws bit for
// bit, and the CPU engine up to its own sigmoid's rounding. Shapes cut unevenly: units
// over blocks, Quads, rows over clusters, and blocks that own no hidden unit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "engine/engine.hpp"
#include "kernels/gibbs_step_phases.hpp"
#include "model/exact.hpp"
#include "test_models.hpp"

using namespace rbm;
namespace chain = rbm::kernels::chain;

namespace {

// Another block's copy of a shared-memory address.
template <int CS>
struct EmulatedPeer {
    float* const* base;
    int self;
    template <class T>
    T* operator()(T* p, int rank) const {
        const auto offset = reinterpret_cast<char*>(p) - reinterpret_cast<char*>(base[self]);
        return reinterpret_cast<T*>(reinterpret_cast<char*>(base[rank]) + offset);
    }
};

// Runs the kernel's program for every cluster of `a` on the CPU (see the file comment).
template <int R, int CS>
void emulate(const chain::Args& a, const uint64_t& step, bool reversed) {
    EXPECT_GE(R, (std::max(a.chains, a.batch) + a.clusters - 1) / a.clusters) << "R must hold every cluster's rows";
    const std::size_t quads = (chain::shared_floats(a, R) + 3) / 4;
    std::vector<std::vector<chain::Quad>> shared(CS, std::vector<chain::Quad>(quads));
    float* base[CS];
    for (int q = 0; q < CS; ++q) base[q] = reinterpret_cast<float*>(shared[q].data());
    using Phase = std::function<void(const chain::Block&, int, EmulatedPeer<CS>)>;
    for (int cluster = 0; cluster < a.clusters; ++cluster) {
        for (int q = 0; q < CS; ++q) std::fill(base[q], base[q] + quads * 4, std::numeric_limits<float>::quiet_NaN());
        std::vector<chain::Block> blocks;
        for (int q = 0; q < CS; ++q) blocks.push_back(chain::block_at<R>(a, base[q], cluster, q));
        std::vector<Phase> since_cluster_barrier;
        auto run_blocks = [&] {
            for (int i = 0; i < CS; ++i) {
                const int q = reversed ? CS - 1 - i : i;
                for (const Phase& phase : since_cluster_barrier)
                    for (int j = 0; j < chain::kThreads; ++j)
                        phase(blocks[q], reversed ? chain::kThreads - 1 - j : j, EmulatedPeer<CS>{base, q});
            }
            since_cluster_barrier.clear();
        };
        chain::step_program<R, CS>(a, step, [&](chain::Barrier after, auto work) {
            since_cluster_barrier.push_back(work);
            if (after == chain::Barrier::cluster) run_blocks();
        });
        run_blocks();
    }
}

struct ChainResult {
    std::vector<float> h, vk, phk;
};

bool operator==(const ChainResult& x, const ChainResult& y) { return x.h == y.h && x.vk == y.vk && x.phk == y.phk; }

// k sweeps of v ~ p(v | h), h ~ p(h | v) with the kernel's draw numbering.
ChainResult plain_chain(const ParamBuffer& p, std::vector<float> h, std::size_t chains, int k, Stream key,
                        uint64_t step) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    ChainResult out{std::move(h), std::vector<float>(chains * nv), std::vector<float>(chains * nh)};
    for (int sweep = 0; sweep < k; ++sweep) {
        for (std::size_t r = 0; r < chains; ++r)
            for (std::size_t i = 0; i < nv; ++i) {
                float pre = 0.0f;
                for (std::size_t j = 0; j < nh; ++j) pre += out.h[r * nh + j] * p.W()[i * nh + j];
                const float prob = chain::chain_sigmoid(pre + p.vbias()[i]);
                out.vk[r * nv + i] = uniform_at(key, step, uint32_t(1 + 2 * sweep), r * nv + i) < prob ? 1.0f : 0.0f;
            }
        for (std::size_t r = 0; r < chains; ++r)
            for (std::size_t j = 0; j < nh; ++j) {
                float pre = 0.0f;
                for (std::size_t i = 0; i < nv; ++i) pre += out.vk[r * nv + i] * p.W()[i * nh + j];
                const float prob = chain::chain_sigmoid(pre + p.hbias()[j]);
                out.phk[r * nh + j] = prob;
                out.h[r * nh + j] = uniform_at(key, step, uint32_t(2 + 2 * sweep), r * nh + j) < prob ? 1.0f : 0.0f;
            }
    }
    return out;
}

// The kernel's arguments for a chain of `chains` rows over `clusters` clusters of CS.
chain::Args chain_args(const ParamBuffer& p, ChainResult& out, int chains, int clusters, int cs, int k, Stream key,
                       const uint64_t& step) {
    chain::Args a = chain::layout(int(p.shape.n_visible), int(p.shape.n_hidden), cs);
    a.W = p.W();
    a.vbias = p.vbias();
    a.hbias = p.hbias();
    a.h = out.h.data();
    a.vk = out.vk.data();
    a.phk = out.phk.data();
    a.chains = chains;
    a.k = k;
    a.clusters = clusters;
    a.key = key;
    a.step_ptr = &step;
    return a;
}

// The kernel's chain, emulated in both orders (which must agree).
template <int R, int CS>
ChainResult emulated_chain(const ParamBuffer& p, const std::vector<float>& h, int chains, int clusters, int k,
                           Stream key, uint64_t step) {
    ChainResult runs[2];
    for (int reversed = 0; reversed < 2; ++reversed) {
        ChainResult& out = runs[reversed];
        out = {h, std::vector<float>(std::size_t(chains) * p.shape.n_visible, -1.0f),
               std::vector<float>(std::size_t(chains) * p.shape.n_hidden, -1.0f)};
        emulate<R, CS>(chain_args(p, out, chains, clusters, CS, k, key, step), step, reversed == 1);
    }
    EXPECT_TRUE(runs[0] == runs[1]) << "the blocks' or threads' order changed the result";
    return runs[0];
}

std::size_t count_differences(const std::vector<float>& a, const std::vector<float>& b) {
    std::size_t n = 0;
    for (std::size_t e = 0; e < a.size(); ++e) n += !(a[e] == b[e]);
    return n;
}

// Some units on and some off: a chain that is not trivially stuck.
void expect_mixed(const std::vector<float>& sample) {
    const float on = std::accumulate(sample.begin(), sample.end(), 0.0f);
    EXPECT_GT(on, 0.05f * float(sample.size()));
    EXPECT_LT(on, 0.95f * float(sample.size()));
}

template <int R, int CS>
void check_against_plain_chain(RbmShape shape, int chains, int clusters, int k) {
    SCOPED_TRACE(testing::Message() << shape.n_visible << "x" << shape.n_hidden << ", " << chains << " chains over "
                                    << clusters << " clusters of " << CS << ", k " << k);
    const ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 5);
    const std::vector<float> h0 = test::random_binary_rows(std::size_t(chains), shape.n_hidden, 6);
    const Stream key = Stream::make(9, 1, Purpose::gibbs);
    const uint64_t step = 77;
    const ChainResult want = plain_chain(p, h0, std::size_t(chains), k, key, step);
    const ChainResult got = emulated_chain<R, CS>(p, h0, chains, clusters, k, key, step);
    EXPECT_EQ(count_differences(want.h, got.h), 0u);
    EXPECT_EQ(count_differences(want.vk, got.vk), 0u);
    EXPECT_EQ(count_differences(want.phk, got.phk), 0u);
    expect_mixed(got.h);
}

}  // namespace

TEST(GibbsChainPhases, EqualAPlainChainOnUnevenShapes) {
    check_against_plain_chain<2, 16>({96, 40}, 16, 8, 3);   // blocks 14 and 15 own no hidden unit
    check_against_plain_chain<3, 16>({786, 102}, 20, 8, 3);  // clusters of 2 and 3 rows; rows not whole Quads
    check_against_plain_chain<7, 8>({786, 102}, 20, 3, 2);
    check_against_plain_chain<8, 16>({50, 10}, 64, 8, 2);    // fewer hidden units than blocks
    check_against_plain_chain<1, 8>({33, 17}, 5, 5, 1);
}

TEST(GibbsChainPhases, TutorialShapeEqualsAPlainChain) {
    check_against_plain_chain<3, 16>({784, 500}, 20, 8, 2);
}

// The draws are the CPU engine's: after one PCD step its chains equal the kernel's.
TEST(GibbsChainPhases, ChainsEqualTheCpuEngines) {
    const RbmShape shape{120, 36};
    const int chains = 12, k = 4;
    const ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 7);
    const std::vector<float> h0 = test::random_binary_rows(chains, shape.n_hidden, 8);
    auto cpu = make_cpu_engine(shape);
    cpu->set_params(p);
    cpu->set_velocity(ParamBuffer(shape));
    cpu->set_training_shard(test::dataset_of(test::random_binary_rows(chains, shape.n_visible, 9), shape.n_visible));
    cpu->set_chains(std::vector<uint8_t>(h0.begin(), h0.end()));
    std::vector<uint32_t> order(chains);
    std::iota(order.begin(), order.end(), 0u);
    cpu->set_epoch_order(order);
    const StepSettings s{.k = k, .batch = std::size_t(chains), .chains = std::size_t(chains), .seed = 3, .rank = 2};
    const StepSpec spec{.step = 41, .pl_bit = 41 % shape.n_visible};
    cpu->compute_gradient(order.data(), s, spec);
    const std::vector<uint8_t> cpu_chains = cpu->get_chains();
    const ChainResult got = emulated_chain<2, 8>(p, h0, chains, 6, k, Stream::make(3, 2, Purpose::gibbs), 41);
    // The CPU engine's vectorised sigmoid may differ from expf's in the last bit: a
    // draw within that of its probability could flip (none does for this seed).
    EXPECT_EQ(count_differences(std::vector<float>(cpu_chains.begin(), cpu_chains.end()), got.h), 0u);
}

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

TEST(GibbsChainPhases, FusedStepEqualsAPlainStep) {
    check_step_against_plain<2, 16>({{96, 40}, 16, 16, 8, 2, false, true, false});
    check_step_against_plain<3, 16>({{786, 102}, 12, 20, 8, 2, false, true, true});   // batch < chains
    check_step_against_plain<3, 8>({{786, 102}, 20, 7, 7, 1, false, true, false});    // batch > chains
    check_step_against_plain<1, 8>({{33, 17}, 5, 5, 5, 1, true, true, false});       // CD
    check_step_against_plain<2, 16>({{50, 10}, 16, 16, 8, 2, true, false, true});     // CD, not measured
}

TEST(GibbsChainPhases, FusedStepAtTheTutorialsShape) {
    check_step_against_plain<3, 16>({{784, 500}, 20, 20, 8, 2, false, true, false});
}

// The fused step leaves what the CPU engine's step does: the chains, the gradient
// formed from its outputs, and the monitoring sums.
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

TEST(GibbsChainPhases, FusedStepEqualsTheCpuEngines) {
    check_step_against_cpu({{120, 36}, 12, 16, 8, 3, false, true, false});
    check_step_against_cpu({{120, 36}, 16, 16, 8, 2, false, true, true});
    check_step_against_cpu({{120, 36}, 16, 16, 8, 1, true, true, false});
}
