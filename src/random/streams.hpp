// Every random number rbm draws comes from Philox4x32-10 (Random123), keyed by
// (seed, rank, purpose) and counted by (step, draw, element). Nothing is stateful: a
// number is a pure function of where it is used, so the CPU and CUDA engines draw
// identical numbers, and resuming a run needs only its step counter.
#pragma once

#include <cstdint>

#include <Random123/philox.h>

#if defined(__CUDACC__)
#define RBM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RBM_HOST_DEVICE inline
#endif

namespace rbm {

// What a stream is for; part of the key so that streams never overlap.
enum class Purpose : uint32_t {
    init_weights = 1,   // W's initial values (rank-independent)
    shuffle = 2,        // per-epoch order of a rank's shard
    binarize = 3,       // stochastic binarisation of input pixels (rank-independent)
    gibbs = 4,          // Bernoulli draws of training's Gibbs chains
    sample = 5,         // Bernoulli draws of `rbm sample`
    sample_start = 6,   // which examples / noise start `rbm sample`'s chains
    // 7 is not used (validation is the data's last fraction, drawn from no stream); it
    // stays unassigned so that the other purposes keep their keys and their numbers.
    ais = 8,            // annealed importance sampling
    tempering = 9,      // parallel tempering: the tempered levels' draws (level << 18 | draw) and swaps (draw 0)
};

// One stream: fixed key, counter = {element / 4, draw, step_lo, step_hi}.
struct Stream {
    uint32_t key0;  // seed
    uint32_t key1;  // rank << 8 | purpose

    RBM_HOST_DEVICE static Stream make(uint32_t seed, uint32_t rank, Purpose purpose) {
        return Stream{seed, (rank << 8) | static_cast<uint32_t>(purpose)};
    }

    // Four raw 32-bit words for block `block` of draw `draw` in step `step`.
    RBM_HOST_DEVICE r123::Philox4x32::ctr_type block(uint64_t step, uint32_t draw,
                                                     uint32_t block_index) const {
        r123::Philox4x32 rng;
        r123::Philox4x32::ctr_type ctr = {{block_index, draw, static_cast<uint32_t>(step),
                                           static_cast<uint32_t>(step >> 32)}};
        r123::Philox4x32::key_type key = {{key0, key1}};
        return rng(ctr, key);
    }
};

// A 32-bit word to a float uniform in [0, 1) with 24 bits: exact in float on any device.
RBM_HOST_DEVICE float word_to_uniform(uint32_t word) {
    return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// The uniform for element `element` of draw `draw` in step `step`.
RBM_HOST_DEVICE float uniform_at(const Stream& s, uint64_t step, uint32_t draw, uint64_t element) {
    const r123::Philox4x32::ctr_type r = s.block(step, draw, static_cast<uint32_t>(element >> 2));
    // Selects, not r.v[element & 3]: a run-time index puts the block in a GPU's local memory.
    const uint32_t low = (element & 1u) ? r.v[1] : r.v[0], high = (element & 1u) ? r.v[3] : r.v[2];
    return word_to_uniform((element & 2u) ? high : low);
}

}  // namespace rbm
