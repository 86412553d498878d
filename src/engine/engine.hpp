// The engine interface: where the RBM's numbers live and how one training step, one
// Gibbs sweep or one free-energy evaluation is computed. The CPU engine (OpenBLAS)
// and the CUDA engine (cuBLAS + kernels/) implement it; the training loop, MPI and
// files know only this interface. Operations are whole RBM steps, so a GPU engine can
// fuse them and capture them as graphs; nothing crosses to the host except what a
// method returns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/gradient_view.hpp"
#include "model/dataset.hpp"
#include "model/params.hpp"
#include "random/streams.hpp"

namespace rbm {

// pt: parallel tempering (Desjardins et al. 2010): PCD's chains at the model (inverse
// temperature 1) plus as many chains at each lower inverse temperature, which mix faster
// and hand their states down by Metropolis swaps between neighbouring temperatures.
enum class Method { cd, pcd, pt };
inline bool keeps_chains(Method m) { return m != Method::cd; }

// What every step of a run does; fixed for the run.
struct StepSettings {
    Method method = Method::pcd;
    int k = 1;                    // Gibbs steps in the negative phase
    std::size_t batch = 20;       // this rank's minibatch
    std::size_t chains = 20;      // this rank's persistent chains (PCD, PT: per temperature); CD uses `batch`
    uint32_t seed = 0;
    uint32_t rank = 0;
    // PT: the inverse temperatures of the tempered levels 1, 2, ..., decreasing from below
    // 1 (level 0, the model's, is 1); empty otherwise.
    std::vector<float> betas{};
};

// What varies from step to step.
struct StepSpec {
    uint64_t step = 0;           // global step counter: keys every draw of the step
    std::size_t pl_bit = 0;      // visible unit flipped by this step's pseudo-likelihood cost
    bool measure = true;         // accumulate the monitoring costs for this step
};

struct UpdateRule {
    float learning_rate = 0.1f;
    float momentum = 0.0f;
    float weight_decay = 0.0f;   // L2 on W only
    float offset_rate = 0.01f;   // centering: the hidden offset's moving-average rate
};

// Centering (Melchior, Fischer & Wiskott, JMLR 2016): the energy is written in the
// units' deviations from offsets, E = -(v - mu)' W (h - lambda) - (v - mu)' b~ -
// (h - lambda)' c~, which defines the same family of models as the plain RBM but
// makes the gradient far better conditioned. The engine keeps the plain parameters
// (W, b = b~ - W lambda, c = c~ - W' mu), so sampling, free energies, checkpoints and
// `rbm eval` are unchanged; only the update differs. Offsets: mu the training data's
// mean (fixed), lambda a moving average of the data's hidden means. Empty: plain RBM.
struct Offsets {
    std::vector<float> visible;  // mu [n_visible]
    std::vector<float> hidden;   // lambda [n_hidden]
    bool empty() const { return visible.empty(); }
};
// Offsets fit the shape (or are empty) and lie in [0, 1]; else an error naming them.
void check_offsets(const Offsets& offsets, RbmShape shape);
// A chain state is whole rows of 0s and 1s (a sample's products may skip its zeros and
// treat the rest as ones); else an error saying what is wrong.
void check_chain_state(const std::vector<uint8_t>& hidden, RbmShape shape);

// Sums over the examples measured since the last take_metric_sums().
struct MetricSums {
    double pseudo_likelihood = 0;     // sum over examples of n_visible * log p(x_i | x_-i)
    double reconstruction_xent = 0;   // sum over examples of the cross-entropy of p(v | p(h | x))
    double examples = 0;
};

class Engine {
public:
    virtual ~Engine() = default;
    virtual std::string describe() const = 0;
    virtual RbmShape shape() const = 0;

    virtual void set_params(const ParamBuffer& params) = 0;
    virtual void get_params(ParamBuffer& params) const = 0;
    virtual void set_velocity(const ParamBuffer& velocity) = 0;
    virtual void get_velocity(ParamBuffer& velocity) const = 0;

    // This rank's training rows, copied once and kept where the engine computes.
    virtual void set_training_shard(const Dataset& shard) = 0;
    // The epoch's visiting order of the shard. compute_gradient's `rows` point into this
    // very array, so an engine that keeps the order on its device can find the batch by
    // offset without copying indices every step. The CPU engine needs nothing here.
    virtual void set_epoch_order(const std::vector<uint32_t>& order) { (void)order; }
    // Persistent chains: hidden states [n_chains, n_hidden], each 0 or 1.
    virtual void set_chains(const std::vector<uint8_t>& hidden) = 0;
    virtual std::vector<uint8_t> get_chains() const = 0;
    // PT's tempered chains: hidden states [level - 1][chain][n_hidden] of levels 1, 2, ...
    // (set_chains holds level 0's). An engine without tempering refuses any.
    virtual void set_tempered_chains(const std::vector<uint8_t>& hidden);
    virtual std::vector<uint8_t> get_tempered_chains() const { return {}; }
    // PT's swaps between levels m and m + 1 since the last call: proposed[m], accepted[m].
    struct SwapCounts {
        std::vector<uint64_t> proposed, accepted;
    };
    virtual SwapCounts take_swap_counts() { return {}; }

    // Centering on (offsets given) or off (empty offsets; the default).
    virtual void set_offsets(const Offsets& offsets) = 0;
    virtual Offsets get_offsets() const = 0;

    // The gradient of one minibatch (shard rows listed in `rows`) into gradient():
    // <v h>_data / batch - <v h>_chains / chains, with hidden probabilities, in parameter
    // layout; when centered, followed by the data's hidden means <h>_data [n_hidden], so
    // that one allreduce also sums what the hidden offset moves towards.
    // PCD advances the persistent chains; the draws are keyed by spec.step. PT also
    // advances every tempered level by k sweeps at its temperature, then proposes swaps
    // between neighbouring levels (after the gradient is formed from level 0's chains).
    virtual void compute_gradient(const uint32_t* rows, const StepSettings& settings,
                                  const StepSpec& spec) = 0;
    virtual GradientView gradient() = 0;
    // params += velocity = momentum * velocity + lr * (scale * gradient - decay * W).
    // Centered: the velocity moves the centered parameters along the centered gradient
    // (dW - mu dc' - db lambda', db, dc), the plain biases follow (b -= dW_applied lambda,
    // c -= dW_applied' mu), then lambda += rate (scale * <h>_data - lambda).
    virtual void apply_update(const UpdateRule& rule, float gradient_scale) = 0;
    virtual MetricSums take_metric_sums() = 0;
    // True when every parameter is finite.
    virtual bool params_finite() const = 0;

    // A step's report: its metric sums (taken, as take_metric_sums does) and whether every
    // parameter is finite after its update. start_step_report() begins it after the update,
    // finish_step_report() waits for the one begun last. The CUDA engine copies both to
    // the host without waiting, so the trainer can queue the next step before it reads
    // this one and the GPU does not idle while the host checks; the default takes both at once.
    struct StepReport {
        MetricSums sums;
        bool params_finite = true;
    };
    virtual void start_step_report() { report_ = {take_metric_sums(), params_finite()}; }
    virtual StepReport finish_step_report() { return report_; }

    // p(v | h) of the persistent chains [n_chains, n_visible] and a binary draw from it
    // (draw 0 of `stream` at counter `step`): the chains' current visible samples.
    virtual void chain_visibles(float* mean, float* sample, const Stream& stream, uint64_t step) = 0;

    // Sum of free energies of host rows [n, n_visible].
    virtual double free_energy_sum(const float* rows, std::size_t n) = 0;

    // `steps` Gibbs sweeps v -> h -> v of n visible chains held in v [n, n_visible]
    // (0/1, in and out); sweep s draws with counter step = first_step + s. mean receives
    // p(v | h) of the last sweep.
    virtual void gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                               uint64_t first_step) = 0;

private:
    StepReport report_;  // the default step report, taken at its start
};

std::unique_ptr<Engine> make_cpu_engine(RbmShape shape);

}  // namespace rbm
