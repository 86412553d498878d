// The whole-chain Gibbs kernel's phases (kernels/gibbs_chain_phases.hpp), run on the
// CPU in the kernel's order: cluster by cluster, each phase for every block and thread,
// a peer's shared memory being another block's buffer, each cluster's shared memory
// filled with NaN first (a read of anything not loaded spoils the result). The weights
// are multiples of 1/64 (test::dyadic_params), so every sum is exact in float in any
// order: the emulation must
// equal a plain Gibbs chain with the same draws bit for bit, and the CPU engine's chains
// up to its own sigmoid's rounding. Shapes cut unevenly: units over blocks, Quads,
// rows over clusters, and blocks that own no hidden unit.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "engine/engine.hpp"
#include "kernels/gibbs_chain_phases.hpp"
#include "test_models.hpp"

using namespace rbm;
namespace chain = rbm::kernels::chain;

namespace {

struct ChainResult {
    std::vector<float> h, vk, phk;
};

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

// The kernel's phases on the CPU; R must be the most rows any cluster gets.
template <int R, int CS>
ChainResult emulated_kernel(const ParamBuffer& p, std::vector<float> h, int chains, int clusters, int k, Stream key,
                            uint64_t step) {
    const int nv = int(p.shape.n_visible), nh = int(p.shape.n_hidden);
    ChainResult out{std::move(h), std::vector<float>(std::size_t(chains) * nv, -1.0f),
                    std::vector<float>(std::size_t(chains) * nh, -1.0f)};
    chain::Args a = chain::layout(nv, nh, CS);
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
    EXPECT_EQ(R, (chains + clusters - 1) / clusters) << "the test must instantiate R = the most rows of a cluster";
    const std::size_t quads = (chain::shared_floats(a, R) + 3) / 4;
    std::vector<std::vector<chain::Quad>> shared(CS, std::vector<chain::Quad>(quads));
    float* base[CS];
    for (int q = 0; q < CS; ++q) base[q] = reinterpret_cast<float*>(shared[q].data());
    for (int cluster = 0; cluster < clusters; ++cluster) {
        for (int q = 0; q < CS; ++q)
            std::fill(base[q], base[q] + quads * 4, std::numeric_limits<float>::quiet_NaN());
        std::vector<chain::Block> blocks;
        for (int q = 0; q < CS; ++q) blocks.push_back(chain::block_at<R>(a, base[q], cluster, q));
        auto each_thread = [&](auto&& phase) {
            for (int q = 0; q < CS; ++q)
                for (int t = 0; t < chain::kThreads; ++t) phase(q, t);
        };
        each_thread([&](int q, int t) { chain::load<R>(a, blocks[q], t); });
        const uint64_t first_step = *a.step_ptr;
        for (int sweep = 0; sweep < k; ++sweep) {
            each_thread([&](int q, int t) { chain::visible_shares<R>(a, blocks[q], t); });
            each_thread([&](int q, int t) {
                const auto peer = [&, q](float* ptr, int rank) { return base[rank] + (ptr - base[q]); };
                chain::visible_draws<R, CS>(a, blocks[q], t, sweep, first_step, peer);
            });
            each_thread([&](int q, int t) { chain::hidden_sums<R>(a, blocks[q], t); });
            each_thread([&](int q, int t) { chain::hidden_draws<R>(a, blocks[q], t, sweep, first_step); });
        }
    }
    return out;
}

std::size_t count_differences(const std::vector<float>& a, const std::vector<float>& b) {
    std::size_t n = 0;
    for (std::size_t e = 0; e < a.size(); ++e) n += !(a[e] == b[e]);
    return n;
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
    const ChainResult got = emulated_kernel<R, CS>(p, h0, chains, clusters, k, key, step);
    EXPECT_EQ(count_differences(want.h, got.h), 0u);
    EXPECT_EQ(count_differences(want.vk, got.vk), 0u);
    EXPECT_EQ(count_differences(want.phk, got.phk), 0u);
    // The chain is not trivially stuck: some units are on and some off.
    const float on = std::accumulate(got.h.begin(), got.h.end(), 0.0f);
    EXPECT_GT(on, 0.05f * float(got.h.size()));
    EXPECT_LT(on, 0.95f * float(got.h.size()));
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
    StepSettings s;
    s.k = k;
    s.batch = std::size_t(chains);
    s.chains = std::size_t(chains);
    s.seed = 3;
    s.rank = 2;
    StepSpec spec;
    spec.step = 41;
    spec.pl_bit = 41 % shape.n_visible;
    cpu->compute_gradient(order.data(), s, spec);
    const std::vector<uint8_t> cpu_chains = cpu->get_chains();
    const ChainResult got = emulated_kernel<2, 8>(p, h0, chains, 6, k, Stream::make(3, 2, Purpose::gibbs), 41);
    // The CPU engine's vectorised sigmoid may differ from expf's in the last bit: a
    // draw within that of its probability could flip (none does for this seed).
    EXPECT_EQ(count_differences(std::vector<float>(cpu_chains.begin(), cpu_chains.end()), got.h), 0u);
}
