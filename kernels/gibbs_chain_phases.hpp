// The whole-chain Gibbs kernel's layout and the phases of its k sweeps (see
// gibbs_chain.cuh); the fused step's phases and the kernel's program, the order of the
// phases and the barrier after each, are in gibbs_step_phases.hpp. Within a phase every
// thread's work is independent. Written for host and device alike: the CUDA kernel runs
// the program with real barriers, and a unit test runs the very same program on the CPU,
// each phase block by block and thread by thread (tests/unit/chain_emulation.hpp),
// so the layout, indexing, draw numbering and barrier placement are checked where there
// is no GPU.
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
constexpr int kMaxRows = 8;  // the most chain rows (or batch rows) one cluster holds

// 16 bytes: 128-bit shared-memory loads on the device.
struct alignas(16) Quad {
    float x, y, z, w;
};

struct Args {
    const float* W;      // [nv, nh] row-major
    const float* vbias;  // [nv]
    const float* hbias;  // [nh]
    float* h;            // [chains, nh]: the chains' hidden sample, read first (unless cd), written last
    float* vk;           // [chains, nv]: the last sweep's visible sample
    float* phk;          // [chains, nh]: the last sweep's hidden probabilities, times phk_scale
    int chains, nv, nh, k, clusters;
    int hs, hsp;  // hidden units per block; the row stride of its W slice (>= hs)
    int vs, nvp;  // visible units per block; the row stride of the visible buffers (>= nv)
    int tsp;      // the row stride of a block's per-unit terms (>= hsp and >= vs)
    Stream key;
    const uint64_t* step_ptr;
    float phk_scale = 1.0f;
    // The fused step (shard != nullptr): the batch's gather, positive phase and monitoring
    // run in the kernel before the chain, each cluster taking its share of the batch rows,
    // and phk, ph0 come out scaled by the gradient's row weights (-1/chains, 1/batch).
    const float* shard = nullptr;      // [shard rows, nv]: this rank's training rows
    const uint32_t* order = nullptr;   // the epoch's order of the shard's rows
    const uint64_t* cursor_ptr = nullptr;  // where the batch starts in order
    float* v0 = nullptr;               // [batch, nv]: the batch, for the gradient product
    float* ph0 = nullptr;              // [batch, nh]: p(h | v0) times ph0_scale
    double* sums = nullptr;            // += pseudo-likelihood, reconstruction cross-entropy, examples
    int batch = 0;
    float ph0_scale = 1.0f;
    bool cd = false;       // the chain starts at h ~ p(h | v0), draw 0, instead of at h (chains == batch)
    bool measure = false;  // the tutorial's monitoring: one pseudo-likelihood bit and the reconstruction
    bool binary = false;   // the shard is 0/1: round(v0) = v0
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
    a.tsp = a.hsp > a.vs ? a.hsp : (a.vs + 3) / 4 * 4;
    return a;
}

// A block's shared memory in floats, for clusters of up to `rows` rows: ws [nvp][hsp]
// (its columns of W), part [rows][nvp] (its share of h W'), vfull [rows][nvp] (the
// cluster's whole visible sample), hloc [rows][hsp] (its hidden sample), red
// [warps][rows][hsp] (the warps' partial hidden sums); for the fused step hdata and hpre
// [rows][hsp] (p(h | v0), and round(v0) W without bias), terms [rows][tsp] (a row's
// per-unit monitoring terms) and stats (2 rows doubles). Every part is whole Quads.
inline std::size_t shared_floats(const Args& a, int rows) {
    return std::size_t(a.nvp) * a.hsp + 2 * std::size_t(rows) * a.nvp + std::size_t(rows) * a.hsp * (3 + kWarps) +
           std::size_t(rows) * a.tsp + 4 * std::size_t(rows);
}

// One block's place: its rows of the chains and of the batch, its hidden and visible
// units, its buffers.
struct Block {
    float *ws, *part, *vfull, *hloc, *red, *hdata, *hpre, *terms;
    double* stats;  // [2 rows]: this block's pseudo-likelihood share of each row; then (rank 0) each row's term
    int rank;
    int row0, rows;      // chain rows
    int d_row0, d_rows;  // batch rows (fused step)
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
    b.hdata = b.red + kWarps * R * a.hsp;
    b.hpre = b.hdata + R * a.hsp;
    b.terms = b.hpre + R * a.hsp;
    b.stats = reinterpret_cast<double*>(b.terms + R * a.tsp);
    b.rank = rank;
    b.row0 = int(int64_t(cluster) * a.chains / a.clusters);
    b.rows = int(int64_t(cluster + 1) * a.chains / a.clusters) - b.row0;
    b.d_row0 = int(int64_t(cluster) * a.batch / a.clusters);
    b.d_rows = int(int64_t(cluster + 1) * a.batch / a.clusters) - b.d_row0;
    b.h_first = rank * a.hs;
    b.h_count = units_from(b.h_first, a.hs, a.nh);
    b.v_first = rank * a.vs;
    b.v_count = units_from(b.v_first, a.vs, a.nv);
    return b;
}

RBM_HOST_DEVICE float chain_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
// The shard row of batch row r of this block.
RBM_HOST_DEVICE const float* batch_row(const Args& a, const Block& b, int r) {
    return a.shard + std::size_t(a.order[*a.cursor_ptr + uint64_t(b.d_row0 + r)]) * std::size_t(a.nv);
}

// Phase 0: this block's columns of W (zero beyond nh and nv); its hidden sample (zero
// for CD, whose chain starts from the batch); the cluster's batch rows in vfull for the
// fused step (this block writing its visible units of them to v0), else zeros; zeros in
// every row or unit a smaller cluster or block does not use. W is read a warp per row,
// its lanes along the row: coalesced, and no division by the runtime stride.
template <int R>
RBM_HOST_DEVICE void load(const Args& a, const Block& b, int t) {
    const int lane = t & 31, warp = t >> 5;
    for (int i = warp; i < a.nvp; i += kWarps)
        for (int jj = lane; jj < a.hsp; jj += 32)
            b.ws[i * a.hsp + jj] = i < a.nv && jj < b.h_count ? a.W[std::size_t(i) * a.nh + b.h_first + jj] : 0.0f;
    for (int r = 0; r < R; ++r) {
        const float* row = a.shard && r < b.d_rows ? batch_row(a, b, r) : nullptr;
        for (int i = t; i < a.nvp; i += kThreads) {
            const float x = row && i < a.nv ? row[i] : 0.0f;
            if (row && i >= b.v_first && i < b.v_first + b.v_count) a.v0[std::size_t(b.d_row0 + r) * a.nv + i] = x;
            b.vfull[r * a.nvp + i] = x;
        }
    }
    for (int e = t; e < R * a.hsp; e += kThreads) {
        const int r = e / a.hsp, jj = e % a.hsp;
        b.hloc[e] = !a.cd && r < b.rows && jj < b.h_count ? a.h[std::size_t(b.row0 + r) * a.nh + b.h_first + jj]
                                                          : 0.0f;
        b.hdata[e] = 0.0f;
        b.hpre[e] = 0.0f;
    }
}

// Phase 1: this block's hidden units' share of x W' for every visible unit, x the rows
// of `hidden` (hloc: the chain's sample; hdata: p(h | v0) for the reconstruction).
template <int R>
RBM_HOST_DEVICE void visible_shares(const Args& a, const Block& b, int t, const float* hidden) {
    for (int i = t; i < a.nv; i += kThreads) {
        float acc[R] = {};
        const Quad* w_row = reinterpret_cast<const Quad*>(b.ws + std::size_t(i) * a.hsp);
        for (int c4 = 0; c4 < a.hsp / 4; ++c4) {
            const Quad w = w_row[c4];
RBM_CHAIN_UNROLL
            for (int r = 0; r < R; ++r) {
                const Quad hv = reinterpret_cast<const Quad*>(hidden + r * a.hsp)[c4];
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

// The cluster's shares of visible unit i of row r, summed in rank order.
template <int CS, class Peer>
RBM_HOST_DEVICE float visible_pre(const Args& a, const Block& b, int r, int i, Peer peer) {
    float share[CS];
RBM_CHAIN_UNROLL
    for (int src = 0; src < CS; ++src) share[src] = peer(b.part, src)[r * a.nvp + i];
    float pre = 0.0f;
RBM_CHAIN_UNROLL
    for (int src = 0; src < CS; ++src) pre += share[src];
    return pre;
}

// Phase 2 (after a cluster barrier): the visible units this block owns: bias, sigmoid
// and draw 1 + 2 sweep; the sample goes into every block's vfull. peer(p, rank) is p's
// address in block `rank`.
template <int R, int CS, class Peer>
RBM_HOST_DEVICE void visible_draws(const Args& a, const Block& b, int t, int sweep, uint64_t step, Peer peer) {
    for (int e = t; e < b.rows * b.v_count; e += kThreads) {
        const int r = e / b.v_count, i = b.v_first + e % b.v_count;
        const float p = chain_sigmoid(visible_pre<CS>(a, b, r, i, peer) + a.vbias[i]);
        const uint64_t element = uint64_t(b.row0 + r) * uint64_t(a.nv) + uint64_t(i);
        const float v = uniform_at(a.key, step, uint32_t(1 + 2 * sweep), element) < p ? 1.0f : 0.0f;
RBM_CHAIN_UNROLL
        for (int dst = 0; dst < CS; ++dst) peer(b.vfull, dst)[r * a.nvp + i] = v;
        if (sweep + 1 == a.k) a.vk[element] = v;
    }
}

// Phase 3 (after a cluster barrier): this block's hidden pre-activations from the whole
// visible rows in vfull, lane = hidden unit, warp = a slice of visible units.
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

// The warps' sums of hidden unit jj of row r, added in warp order (after a block barrier).
template <int R>
RBM_HOST_DEVICE float hidden_pre(const Args& a, const Block& b, int r, int jj) {
    float pre = 0.0f;
    for (int w = 0; w < kWarps; ++w) pre += b.red[(w * R + r) * a.hsp + jj];
    return pre;
}

// Phase 4 (after a block barrier): bias, sigmoid and draw 2 + 2 sweep into hloc; the
// last sweep writes phk and h.
template <int R>
RBM_HOST_DEVICE void hidden_draws(const Args& a, const Block& b, int t, int sweep, uint64_t step) {
    for (int e = t; e < b.rows * b.h_count; e += kThreads) {
        const int r = e / b.h_count, jj = e % b.h_count, j = b.h_first + jj;
        const float p = chain_sigmoid(hidden_pre<R>(a, b, r, jj) + a.hbias[j]);
        const uint64_t element = uint64_t(b.row0 + r) * uint64_t(a.nh) + uint64_t(j);
        const float hv = uniform_at(a.key, step, uint32_t(2 + 2 * sweep), element) < p ? 1.0f : 0.0f;
        b.hloc[r * a.hsp + jj] = hv;
        if (sweep + 1 == a.k) {
            a.phk[element] = p * a.phk_scale;
            a.h[element] = hv;
        }
    }
}

}  // namespace rbm::kernels::chain
