// The whole-chain Gibbs kernel's sweeps (kernels/gibbs_chain_phases.hpp) run on the CPU
// by the emulation of chain_emulation.hpp. The weights are multiples of 1/64
// (test::dyadic_params), so every pre-activation is exact in float in any order: the
// emulation must equal a plain Gibbs chain with the same draws bit for bit, and the CPU
// engine up to its own sigmoid's rounding. Shapes cut unevenly: units over blocks,
// Quads, rows over clusters, and blocks that own no hidden unit.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "chain_emulation.hpp"
#include "engine/engine.hpp"
#include "test_models.hpp"

using namespace rbm;
using namespace rbm::test;

namespace {

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
