// The k Gibbs sweeps of a small-batch training step as one kernel. At the tutorial's
// batch of 20 each sweep's two products are too small to fill a GPU, and as 4k graph
// nodes (cuBLAS product, sampling kernel) a PCD-15 step costs ~300 us of launch
// latency. Here a thread-block cluster keeps W in its blocks' shared memory for the
// whole chain: block q of a cluster holds the columns of W of its slice of hidden
// units, computes their share of h W' for every visible unit, and the cluster sums the
// shares through distributed shared memory. Chains (rows) are independent, so several
// clusters each run a few rows. Two cluster barriers per sweep, no trip to global
// memory inside the chain. The fused step also runs the batch's positive phase and
// monitoring in the same kernel, so a small-batch step is this kernel and the gradient.
//
// Draws are the CPU engine's: element e = row * n + unit of draw 1 + 2j (visible) or
// 2 + 2j (hidden) of sweep j, word e % 4 of Philox block e / 4, on when the uniform is
// below the probability. Sums run in a fixed order, so a run is deterministic; they are
// not cuBLAS's order, so pre-activations agree with the other path to float rounding.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "random/streams.hpp"

namespace rbm::kernels {

// How the chain kernel runs a shape on a device; cluster_size 0 when it cannot (no
// clusters before sm_90, W's slice too large for shared memory, too many rows).
struct GibbsChainPlan {
    int cluster_size = 0;      // blocks per cluster: the hidden units are split over them
    int clusters = 0;          // chain rows are split evenly over the clusters
    int rows_per_cluster = 0;  // the most rows one cluster holds
    std::size_t shared_bytes = 0;
    bool usable() const { return cluster_size > 0; }
};

// Plans the kernel for `rows` rows (chains, or the batch when that is larger) of an
// n_visible x n_hidden RBM on `device`. Not inside a stream capture: it sets the
// kernel's attributes and asks the occupancy API.
GibbsChainPlan plan_gibbs_chain(std::size_t n_visible, std::size_t n_hidden, std::size_t rows, int device);

// The fused step's batch (gibbs_chain with it): gathered from the shard by the epoch
// order at *cursor, its positive phase and the tutorial's monitoring computed in the
// kernel before the chain. Every output is what the separate kernels would leave.
struct GibbsStepBatch {
    const float* shard;      // [shard rows, n_visible]
    const uint32_t* order;   // the epoch order of shard rows
    const uint64_t* cursor;  // where this batch starts in order (device memory)
    std::size_t batch;
    float* v0;               // [batch, n_visible]: the batch
    float* ph0;              // [batch, n_hidden]: p(h | v0) / batch (the gradient's row weight)
    bool cd;                 // the chain starts at h ~ p(h | v0), draw 0 (chains == batch)
    bool measure;            // add the pseudo-likelihood bit and reconstruction to sums
    bool binary;             // the shard is 0/1
    double* sums;            // [3]: pseudo-likelihood, reconstruction cross-entropy, examples
};

// k sweeps from the hidden sample h [chains, n_hidden] (rows are chains): each sweep
// draws v ~ p(v | h) then h ~ p(h | v). Writes the last sweep's visible sample to
// vk [chains, n_visible], its hidden probabilities to phk [chains, n_hidden] and its
// hidden sample back to h. W is row-major [n_visible, n_hidden]. With `batch` (the fused
// step), first the batch's work above, and phk comes out times -1 / chains.
void gibbs_chain(const GibbsChainPlan& plan, const float* W, const float* vbias, const float* hbias, float* h,
                 float* vk, float* phk, std::size_t chains, std::size_t n_visible, std::size_t n_hidden, int k,
                 Stream key, const uint64_t* step_ptr, cudaStream_t stream, const GibbsStepBatch* batch = nullptr);

}  // namespace rbm::kernels
