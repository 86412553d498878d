// The fused step's phases (the batch's gather, positive phase and the tutorial's
// monitoring, run by the whole-chain kernel before its sweeps) and the kernel's program:
// every phase in order with the barrier after it. Host and device code, as
// gibbs_chain_phases.hpp, whose layout and sweep phases these build on.
#pragma once

#include "kernels/gibbs_chain_phases.hpp"

namespace rbm::kernels::chain {

RBM_HOST_DEVICE float chain_softplus(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
RBM_HOST_DEVICE double chain_softplus(double x) { return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

// Adds to a sum in global memory shared by every block (order-dependent in the last bits).
RBM_HOST_DEVICE void add_to_sum(double* sum, double x) {
#if defined(__CUDA_ARCH__)
    atomicAdd(sum, x);
#else
    *sum += x;
#endif
}

// Fused step, after hidden_sums of the batch rows: p(h | v0) into hdata and (scaled)
// ph0; x W into hpre for the pseudo-likelihood when the data are binary; for CD the
// chain's start h ~ p(h | v0), draw 0, into hloc.
template <int R>
RBM_HOST_DEVICE void positive_hidden(const Args& a, const Block& b, int t, uint64_t step) {
    for (int e = t; e < b.d_rows * b.h_count; e += kThreads) {
        const int r = e / b.h_count, jj = e % b.h_count, j = b.h_first + jj;
        const float pre = hidden_pre<R>(a, b, r, jj);
        if (a.binary) b.hpre[r * a.hsp + jj] = pre;
        const float p = chain_sigmoid(pre + a.hbias[j]);
        b.hdata[r * a.hsp + jj] = p;
        const uint64_t element = uint64_t(b.d_row0 + r) * uint64_t(a.nh) + uint64_t(j);
        a.ph0[element] = p * a.ph0_scale;
        if (a.cd) b.hloc[r * a.hsp + jj] = uniform_at(a.key, step, 0u, element) < p ? 1.0f : 0.0f;
    }
}

// Real-valued data: x = round(v0) in this block's vfull, for the pseudo-likelihood.
template <int R>
RBM_HOST_DEVICE void round_batch(const Args& a, const Block& b, int t) {
    for (int e = t; e < R * a.nvp; e += kThreads) b.vfull[e] = b.vfull[e] >= 0.5f ? 1.0f : 0.0f;
}

// Real-valued data, after hidden_sums of round(v0): x W into hpre.
template <int R>
RBM_HOST_DEVICE void rounded_pre(const Args& a, const Block& b, int t) {
    for (int e = t; e < b.d_rows * b.h_count; e += kThreads) {
        const int r = e / b.h_count, jj = e % b.h_count;
        b.hpre[r * a.hsp + jj] = hidden_pre<R>(a, b, r, jj);
    }
}

// The pseudo-likelihood's per-unit terms: flipping bit i = step % nv of x moves
// hidden unit j's pre-activation by +-W[i, j]: softplus(a + sign w) - softplus(a).
template <int R>
RBM_HOST_DEVICE void likelihood_terms(const Args& a, const Block& b, int t, uint64_t step) {
    const int i = int(step % uint64_t(a.nv));
    for (int e = t; e < b.d_rows * b.h_count; e += kThreads) {
        const int r = e / b.h_count, jj = e % b.h_count;
        const float sign = b.vfull[r * a.nvp + i] >= 0.5f ? -1.0f : 1.0f;  // 1 - 2 x_i
        const float pre = b.hpre[r * a.hsp + jj] + a.hbias[b.h_first + jj];
        b.terms[r * a.tsp + jj] = chain_softplus(pre + sign * b.ws[i * a.hsp + jj]) - chain_softplus(pre);
    }
}

// This block's share of each row's pseudo-likelihood sum, in unit order.
template <int R>
RBM_HOST_DEVICE void likelihood_shares(const Args& a, const Block& b, int t) {
    if (t >= b.d_rows) return;
    double share = 0.0;
    for (int jj = 0; jj < b.h_count; ++jj) share += double(b.terms[t * a.tsp + jj]);
    b.stats[t] = share;
}

// After a cluster barrier: the reconstruction's terms softplus(a) - v0 a of this block's
// visible units, a = p(h | v0) W' + b; and in block 0 each row's pseudo-likelihood term,
// its shares summed in rank order: -nv softplus(-(F(x flipped) - F(x))).
template <int R, int CS, class Peer>
RBM_HOST_DEVICE void reconstruction_terms(const Args& a, const Block& b, int t, uint64_t step, Peer peer) {
    for (int e = t; e < b.d_rows * b.v_count; e += kThreads) {
        const int r = e / b.v_count, ii = e % b.v_count, i = b.v_first + ii;
        const float pre = visible_pre<CS>(a, b, r, i, peer) + a.vbias[i];
        b.terms[r * a.tsp + ii] = chain_softplus(pre) - batch_row(a, b, r)[i] * pre;
    }
    if (b.rank != 0 || t >= b.d_rows) return;
    const int i = int(step % uint64_t(a.nv));
    double delta = 0.0;
    for (int src = 0; src < CS; ++src) delta += peer(b.stats, src)[t];
    const float sign = b.vfull[t * a.nvp + i] >= 0.5f ? -1.0f : 1.0f;
    const double fe_diff = -double(sign) * double(a.vbias[i]) - delta;
    b.stats[R + t] = -double(a.nv) * chain_softplus(-fe_diff);
}

// This block's monitoring sums into the global ones, by one thread.
template <int R>
RBM_HOST_DEVICE void add_monitoring(const Args& a, const Block& b, int t) {
    if (t != 0 || b.d_rows == 0) return;
    double xent = 0.0;
    for (int r = 0; r < b.d_rows; ++r)
        for (int ii = 0; ii < b.v_count; ++ii) xent += double(b.terms[r * a.tsp + ii]);
    add_to_sum(a.sums + 1, xent);
    if (b.rank != 0) return;
    double likelihood = 0.0;
    for (int r = 0; r < b.d_rows; ++r) likelihood += b.stats[R + r];
    add_to_sum(a.sums, likelihood);
    add_to_sum(a.sums + 2, double(b.d_rows));
}

enum class Barrier { block, cluster };

// The kernel's program: each phase as work(block, thread, peer) followed by a barrier
// of the block or of the whole cluster. run(barrier, work) runs a phase: on the GPU this
// thread's share then the barrier, in the unit test every block's every thread. A
// cluster barrier stands wherever a block reads what a peer wrote, or writes what a
// peer may still read; the last touch of a peer's memory comes before the last
// cluster barrier, so no block leaves while a peer still uses its memory.
// The unit test runs a block's phases up to a cluster barrier before the next block
// starts, and after the program returns: the phases capture only what outlives it.
template <int R, int CS, class Run>
RBM_HOST_DEVICE void step_program(const Args& a, const uint64_t& step, Run&& run) {
    run(Barrier::block, [&](const Block& b, int t, auto) { load<R>(a, b, t); });
    if (a.shard) {
        run(Barrier::block, [&](const Block& b, int t, auto) { hidden_sums<R>(a, b, t); });
        run(Barrier::block, [&](const Block& b, int t, auto) { positive_hidden<R>(a, b, t, step); });
        if (a.measure) {
            if (!a.binary) {
                run(Barrier::block, [&](const Block& b, int t, auto) { round_batch<R>(a, b, t); });
                run(Barrier::block, [&](const Block& b, int t, auto) { hidden_sums<R>(a, b, t); });
                run(Barrier::block, [&](const Block& b, int t, auto) { rounded_pre<R>(a, b, t); });
            }
            run(Barrier::block, [&](const Block& b, int t, auto) {
                likelihood_terms<R>(a, b, t, step);
                visible_shares<R>(a, b, t, b.hdata);
            });
            run(Barrier::cluster, [&](const Block& b, int t, auto) { likelihood_shares<R>(a, b, t); });
            run(Barrier::cluster,
                [&](const Block& b, int t, auto peer) { reconstruction_terms<R, CS>(a, b, t, step, peer); });
            run(Barrier::block, [&](const Block& b, int t, auto) { add_monitoring<R>(a, b, t); });
        }
    }
    for (int sweep = 0; sweep < a.k; ++sweep) {
        run(Barrier::cluster, [&](const Block& b, int t, auto) { visible_shares<R>(a, b, t, b.hloc); });
        run(Barrier::cluster,
            [&, sweep](const Block& b, int t, auto peer) { visible_draws<R, CS>(a, b, t, sweep, step, peer); });
        run(Barrier::block, [&](const Block& b, int t, auto) { hidden_sums<R>(a, b, t); });
        run(Barrier::block, [&, sweep](const Block& b, int t, auto) { hidden_draws<R>(a, b, t, sweep, step); });
    }
}

}  // namespace rbm::kernels::chain
