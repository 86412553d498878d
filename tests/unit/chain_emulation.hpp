// Runs the whole-chain kernel's program (kernels/gibbs_step_phases.hpp) on the CPU, for
// the unit tests of its sweeps (test_gibbs_chain_phases.cpp) and of its fused step
// (test_gibbs_step_phases.cpp): cluster by cluster, each phase for every block and
// thread, a peer's shared memory being another block's buffer, each cluster's shared
// memory filled with NaN first (a read of anything not loaded spoils the result).
// Between cluster barriers a block runs all its phases before the next block starts, as
// a GPU may run them, once with blocks and threads in order and once reversed: a phase
// that reads a peer's memory without a cluster barrier before it, or another thread's
// work of the same phase, gives another result. Plus a plain Gibbs chain with the
// kernel's draws, to compare with.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/gibbs_step_phases.hpp"
#include "model/params.hpp"

namespace rbm::test {

namespace chain = rbm::kernels::chain;

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

inline bool operator==(const ChainResult& x, const ChainResult& y) { return x.h == y.h && x.vk == y.vk && x.phk == y.phk; }

// k sweeps of v ~ p(v | h), h ~ p(h | v) with the kernel's draw numbering.
inline ChainResult plain_chain(const ParamBuffer& p, std::vector<float> h, std::size_t chains, int k, Stream key,
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
inline chain::Args chain_args(const ParamBuffer& p, ChainResult& out, int chains, int clusters, int cs, int k, Stream key,
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

inline std::size_t count_differences(const std::vector<float>& a, const std::vector<float>& b) {
    std::size_t n = 0;
    for (std::size_t e = 0; e < a.size(); ++e) n += !(a[e] == b[e]);
    return n;
}

// Some units on and some off: a chain that is not trivially stuck.
inline void expect_mixed(const std::vector<float>& sample) {
    const float on = std::accumulate(sample.begin(), sample.end(), 0.0f);
    EXPECT_GT(on, 0.05f * float(sample.size()));
    EXPECT_LT(on, 0.95f * float(sample.size()));
}

}  // namespace rbm::test
