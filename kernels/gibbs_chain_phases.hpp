// The whole-chain Gibbs kernel's work, phase by phase (see gibbs_chain.cuh). Between
// phases the kernel places a barrier; within one, every thread's work is independent.
// Written for host and device alike: the CUDA kernel runs the phases with cluster
// barriers between them, and a unit test runs the very same functions block by block
// and thread by thread on the CPU (tests/unit/test_gibbs_chain_phases.cpp), so the
// layout, indexing and draw numbering are checked where there is no GPU.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "random/streams.hpp"

#if defined(__CUDACC__)
#define RBM_CHAIN_UNROLL _Pragma("unroll")
#else
#define RBM_CHAIN_UNROLL
#endif

namespace rbm::kernels::chain {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxRows = 8;  // the most chain rows one cluster holds

// 16 bytes: 128-bit shared-memory loads on the device.
struct alignas(16) Quad {
    float x, y, z, w;
};

struct Args {
    const float* W;      // [nv, nh] row-major
    const float* vbias;  // [nv]
    const float* hbias;  // [nh]
    float* h;            // [chains, nh]: the chains' hidden sample, read first, written last
    float* vk;           // [chains, nv]: the last sweep's visible sample
    float* phk;          // [chains, nh]: the last sweep's hidden probabilities
    int chains, nv, nh, k, clusters;
    int hs, hsp;  // hidden units per block; the row stride of its W slice (>= hs)
    int vs, nvp;  // visible units per block; the row stride of the visible buffers (>= nv)
    Stream key;
    const uint64_t* step_ptr;
};

// How a shape is cut over a cluster of `cluster_size` blocks.
inline Args layout(int nv, int nh, int cluster_size) {
    Args a{};
    a.nv = nv;
    a.nh = nh;
    a.hs = (nh + cluster_size - 1) / cluster_size;
    // Rows of whole Quads whose stride is an odd number of Quads: a quarter-warp
    // reading 8 consecutive rows touches 32 distinct banks.
    a.hsp = (a.hs + 3) / 4 * 4;
    if ((a.hsp / 4) % 2 == 0) a.hsp += 4;
    a.vs = (nv + cluster_size - 1) / cluster_size;
    a.nvp = (nv + 3) / 4 * 4;
    return a;
}

// A block's shared memory in floats, for clusters of up to `rows` rows: ws [nvp][hsp]
// (its columns of W), part [rows][nvp] (its share of h W'), vfull [rows][nvp] (the
// cluster's whole visible sample), hloc [rows][hsp] (its hidden sample), red
// [warps][rows][hsp] (the warps' partial hidden sums).
inline std::size_t shared_floats(const Args& a, int rows) {
    return std::size_t(a.nvp) * a.hsp + 2 * std::size_t(rows) * a.nvp + std::size_t(rows) * a.hsp * (1 + kWarps);
}

// One block's place: its rows of the chains, its hidden and visible units, its buffers.
struct Block {
    float *ws, *part, *vfull, *hloc, *red;
    int row0, rows;
    int h_first, h_count, v_first, v_count;
};

// How many of `per` units starting at `first` exist among `total`.
RBM_HOST_DEVICE int units_from(int first, int per, int total) {
    return first >= total ? 0 : (total - first < per ? total - first : per);
}

template <int R>
RBM_HOST_DEVICE Block block_at(const Args& a, float* shared, int cluster, int rank) {
    Block b{};
    b.ws = shared;
    b.part = b.ws + std::size_t(a.nvp) * a.hsp;
    b.vfull = b.part + R * a.nvp;
    b.hloc = b.vfull + R * a.nvp;
    b.red = b.hloc + R * a.hsp;
    b.row0 = int(int64_t(cluster) * a.chains / a.clusters);
    b.rows = int(int64_t(cluster + 1) * a.chains / a.clusters) - b.row0;
    b.h_first = rank * a.hs;
    b.h_count = units_from(b.h_first, a.hs, a.nh);
    b.v_first = rank * a.vs;
    b.v_count = units_from(b.v_first, a.vs, a.nv);
    return b;
}

RBM_HOST_DEVICE float chain_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// Phase 0: this block's columns of W (zero beyond nh and nv), its hidden sample, and
// zeros in the visible rows a smaller cluster does not use.
template <int R>
RBM_HOST_DEVICE void load(const Args& a, const Block& b, int t) {
    for (int e = t; e < a.nvp * a.hsp; e += kThreads) {
        const int i = e / a.hsp, jj = e % a.hsp;
        b.ws[e] = i < a.nv && jj < b.h_count ? a.W[std::size_t(i) * a.nh + b.h_first + jj] : 0.0f;
    }
    for (int e = t; e < R * a.nvp; e += kThreads) b.vfull[e] = 0.0f;
    for (int e = t; e < R * a.hsp; e += kThreads) {
        const int r = e / a.hsp, jj = e % a.hsp;
        b.hloc[e] = r < b.rows && jj < b.h_count ? a.h[std::size_t(b.row0 + r) * a.nh + b.h_first + jj] : 0.0f;
    }
}

// Phase 1: this block's hidden units' share of h W', for every visible unit.
template <int R>
RBM_HOST_DEVICE void visible_shares(const Args& a, const Block& b, int t) {
    for (int i = t; i < a.nv; i += kThreads) {
        float acc[R] = {};
        const Quad* w_row = reinterpret_cast<const Quad*>(b.ws + std::size_t(i) * a.hsp);
        for (int c4 = 0; c4 < a.hsp / 4; ++c4) {
            const Quad w = w_row[c4];
RBM_CHAIN_UNROLL
            for (int r = 0; r < R; ++r) {
                const Quad hv = reinterpret_cast<const Quad*>(b.hloc + r * a.hsp)[c4];
                acc[r] = fmaf(hv.x, w.x, acc[r]);
                acc[r] = fmaf(hv.y, w.y, acc[r]);
                acc[r] = fmaf(hv.z, w.z, acc[r]);
                acc[r] = fmaf(hv.w, w.w, acc[r]);
            }
        }
RBM_CHAIN_UNROLL
        for (int r = 0; r < R; ++r) b.part[r * a.nvp + i] = acc[r];
    }
}

// Phase 2 (after a cluster barrier): the visible units this block owns. The cluster's
// shares are summed in rank order, then bias, sigmoid and draw 1 + 2 sweep; the sample
// goes into every block's vfull. peer(p, rank) is p's address in block `rank`.
template <int R, int CS, class Peer>
RBM_HOST_DEVICE void visible_draws(const Args& a, const Block& b, int t, int sweep, uint64_t step, Peer peer) {
    for (int e = t; e < b.rows * b.v_count; e += kThreads) {
        const int r = e / b.v_count, i = b.v_first + e % b.v_count;
        float share[CS];
RBM_CHAIN_UNROLL
        for (int src = 0; src < CS; ++src) share[src] = peer(b.part, src)[r * a.nvp + i];
        float pre = 0.0f;
RBM_CHAIN_UNROLL
        for (int src = 0; src < CS; ++src) pre += share[src];
        const float p = chain_sigmoid(pre + a.vbias[i]);
        const uint64_t element = uint64_t(b.row0 + r) * uint64_t(a.nv) + uint64_t(i);
        const float v = uniform_at(a.key, step, uint32_t(1 + 2 * sweep), element) < p ? 1.0f : 0.0f;
RBM_CHAIN_UNROLL
        for (int dst = 0; dst < CS; ++dst) peer(b.vfull, dst)[r * a.nvp + i] = v;
        if (sweep + 1 == a.k) a.vk[element] = v;
    }
}

// Phase 3 (after a cluster barrier): this block's hidden pre-activations from the whole
// visible sample, lane = hidden unit, warp = a slice of visible units.
template <int R>
RBM_HOST_DEVICE void hidden_sums(const Args& a, const Block& b, int t) {
    const int lane = t & 31, warp = t >> 5;
    const int quads = a.nvp / 4, per_warp = (quads + kWarps - 1) / kWarps;
    const int quad_begin = warp * per_warp;
    const int quad_end = quad_begin + per_warp < quads ? quad_begin + per_warp : quads;
    for (int jj = lane; jj < b.h_count; jj += 32) {
        float acc[R] = {};
        for (int qd = quad_begin; qd < quad_end; ++qd) {
            const float* w = b.ws + std::size_t(qd) * 4 * a.hsp + jj;
            const float w0 = w[0], w1 = w[a.hsp], w2 = w[2 * a.hsp], w3 = w[3 * a.hsp];
RBM_CHAIN_UNROLL
            for (int r = 0; r < R; ++r) {
                const Quad x = reinterpret_cast<const Quad*>(b.vfull + r * a.nvp)[qd];
                acc[r] = fmaf(x.x, w0, acc[r]);
                acc[r] = fmaf(x.y, w1, acc[r]);
                acc[r] = fmaf(x.z, w2, acc[r]);
                acc[r] = fmaf(x.w, w3, acc[r]);
            }
        }
RBM_CHAIN_UNROLL
        for (int r = 0; r < R; ++r) b.red[(warp * R + r) * a.hsp + jj] = acc[r];
    }
}

// Phase 4 (after a block barrier): the warps' sums added in warp order, then bias,
// sigmoid and draw 2 + 2 sweep into hloc; the last sweep writes phk and h.
template <int R>
RBM_HOST_DEVICE void hidden_draws(const Args& a, const Block& b, int t, int sweep, uint64_t step) {
    for (int e = t; e < b.rows * b.h_count; e += kThreads) {
        const int r = e / b.h_count, jj = e % b.h_count, j = b.h_first + jj;
        float pre = 0.0f;
        for (int w = 0; w < kWarps; ++w) pre += b.red[(w * R + r) * a.hsp + jj];
        const float p = chain_sigmoid(pre + a.hbias[j]);
        const uint64_t element = uint64_t(b.row0 + r) * uint64_t(a.nh) + uint64_t(j);
        const float hv = uniform_at(a.key, step, uint32_t(2 + 2 * sweep), element) < p ? 1.0f : 0.0f;
        b.hloc[r * a.hsp + jj] = hv;
        if (sweep + 1 == a.k) {
            a.phk[element] = p;
            a.h[element] = hv;
        }
    }
}

}  // namespace rbm::kernels::chain
