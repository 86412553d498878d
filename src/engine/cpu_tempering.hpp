// Parallel tempering on the CPU (Desjardins, Courville, Bengio, Vincent & Delalleau 2010;
// Fischer & Igel): PCD's persistent chains are level 0 of a ladder of inverse temperatures
// 1 = beta_0 > beta_1 > ... ; level m samples p_m(v, h) ~ exp(-beta_m E(v, h)), the model
// with every pre-activation scaled by beta_m, so its chains mix faster the hotter it is,
// and Metropolis swaps between neighbouring levels carry their states down to the model.
// The engine forms the gradient from level 0 as PCD does; this class then advances the
// tempered levels and proposes the swaps. A file of its own: the engine's step is fused
// and threaded by hidden units, while the levels here are independent, one thread each.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/engine.hpp"

namespace rbm::cpu {

class Tempering {
public:
    void set_chains(const std::vector<uint8_t>& hidden) { h_.assign(hidden.begin(), hidden.end()); }
    std::vector<uint8_t> get_chains() const { return std::vector<uint8_t>(h_.begin(), h_.end()); }
    Engine::SwapCounts take_swap_counts();

    // After a step whose last sweep left level 0's chains at (model_v, model_h) [chains,
    // n_visible] and [chains, n_hidden]: k sweeps h -> v -> h of every tempered level
    // (level m, sweep j draws v with (m << 18) | (1 + 2j) and h with (m << 18) | (2 + 2j)
    // of Purpose::tempering at counter spec.step), then the swaps between levels (m, m + 1)
    // for every m of the step's parity, chain c with chain c, accepted when the uniform
    // (draw 0, element m * chains + c) is below exp((beta_m - beta_m+1)(E_m - E_m+1)).
    // A swap exchanges the hidden states, so model_h may change. model_wt is W' [nh, nv]
    // of params where the caller has it (the engine's sparse sweeps keep one), else null:
    // then W' is transposed here, once per params_version (which changes whenever params do).
    void advance(const ParamBuffer& params, uint64_t params_version, const float* model_wt, const float* model_v,
                 float* model_h, const StepSettings& s, const StepSpec& spec);

private:
    // Level l's workspace: its visible sample, products and a sample's nonzeros.
    struct Work {
        float *v, *act_v, *pre_h, *act_h;
        uint32_t* ones;
        std::size_t* count;
    };
    void reserve(RbmShape shape, std::size_t levels, std::size_t chains);
    Work work(std::size_t level);
    float* chains_of(std::size_t level, float* model_h);
    void sweep(std::size_t level, float beta, const ParamBuffer& params, const StepSettings& s, const StepSpec& spec);
    void model_products(const ParamBuffer& params, const float* model_v);
    void store_energies(std::size_t level, const ParamBuffer& params, const float* v, const float* h,
                        const float* pre_h);
    void swap(const StepSettings& s, const StepSpec& spec, float* model_h);

    RbmShape shape_{};
    std::size_t levels_ = 0, chains_ = 0;
    std::vector<float> h_;              // levels 1, 2, ...: hidden states [level - 1][chain][n_hidden]
    std::vector<float> work_floats_;    // per level: v, act_v [chains, nv]; pre_h, act_h [chains, nh]
    std::vector<uint32_t> work_ones_;   // per level: a sample's ones, row by row
    std::vector<std::size_t> work_counts_;
    std::vector<float> zeros_;          // a zero bias: the scaled pre-activations carry theirs
    std::vector<double> energy_;        // E(v, h) of each level's last state [level][chain]
    std::vector<float> wt_;             // W' [nh, nv]: the rows summed for a sparse h's product
    uint64_t wt_version_ = UINT64_MAX;
    const float* step_wt_ = nullptr;    // this step's W': the caller's or wt_
    Engine::SwapCounts swaps_;
};

}  // namespace rbm::cpu
