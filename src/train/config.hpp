// Everything that defines a training run. The CLI fills it from flags and INI files
// (same keys), checkpoints store it as INI text, and a resumed run reads it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dist/comm_kind.hpp"
#include "engine/device_kind.hpp"
#include "engine/engine.hpp"
#include "io/dataset.hpp"
#include "util/choices.hpp"

namespace rbm {

struct TrainConfig {
    // data
    std::string data;                 // training source: IDX[.gz] or file.h5:/dataset
    std::string test_data;            // validation source (optional)
    double validation_fraction = 0;   // else hold out this last fraction of the training rows
    std::size_t limit = 0;            // use only the first N training rows (0: all)
    BinarizeSpec binarize;
    // model and method
    std::size_t hidden = 500;
    Method method = Method::pcd;
    int k = 15;
    std::size_t batch_size = 20;      // per rank; the global batch is ranks x batch_size
    std::size_t chains = 0;           // persistent chains per rank (0: batch_size); PT: per temperature
    std::size_t temperatures = 0;     // PT: inverse temperatures, the model's included (0: kDefaultTemperatures)
    std::optional<float> beta_min;    // PT: the hottest one (unset: kDefaultBetaMin)
    std::size_t epochs = 15;
    UpdateRule update;                // lr 0.1, momentum 0, weight decay 0, offset rate 0.01
    // schedules, centering and initialisation (docs/training.md)
    std::optional<float> lr_final;    // lr falls linearly to this by the last step (unset: constant)
    float initial_momentum = 0.5f;    // momentum of the first momentum_warmup epochs
    std::size_t momentum_warmup = 0;  // epochs at initial_momentum (0: none)
    bool centering = false;           // centered gradient (Melchior et al. 2016)
    bool vbias_from_data = false;     // visible biases start at log(p / (1 - p)) of the data's means
    std::string init_from;            // a checkpoint file whose parameters and chains start the run (empty: none)
    uint32_t seed = 123;
    // outputs and cadence
    std::string out = "runs/mnist";
    std::size_t checkpoint_every = 0; // steps; 0: at the end of every epoch only
    std::size_t keep_checkpoints = 3; // 0 keeps all
    std::size_t monitor_every = 0;    // steps; 0: one metrics row per epoch
    std::size_t monitor_examples = 1000;  // examples (global) for the free-energy gap
    std::size_t sample_every = 0;     // epochs between sample tensors of the persistent chains
    bool filters = true;              // filters PNG every epoch
    double max_hours = 0;             // this process stops (checkpoint, exit 75) after running as long (0: never)
    double progress_every = 30;       // seconds between progress lines in a batch log (0: none)
    int threads = 0;                  // CPU threads per rank (0: all cores alone, one per rank under MPI)
    // where it runs
    DeviceKind device = DeviceKind::auto_select;  // auto: a GPU when one is visible
    CommKind comm = CommKind::auto_select;        // auto: NCCL on GPUs, MPI on CPUs, none on one rank
    bool tf32 = false;                            // cuBLAS TF32 products

    std::size_t chains_per_rank() const { return chains ? chains : batch_size; }
    // PT's ladder: M inverse temperatures evenly spaced from 1 (the model) down to beta_min.
    static constexpr std::size_t kDefaultTemperatures = 5;
    static constexpr float kDefaultBetaMin = 0.8f;
    std::size_t temperature_count() const {
        return method == Method::pt ? (temperatures ? temperatures : kDefaultTemperatures) : 1;
    }
    float hottest_beta() const { return beta_min.value_or(kDefaultBetaMin); }
    // The tempered levels' inverse temperatures 1 - m (1 - beta_min) / (M - 1), m = 1..M-1
    // (empty unless PT).
    std::vector<float> tempered_betas() const;
    // The update rule of a step of epoch `epoch`, out of total_steps in the whole run.
    UpdateRule update_at(uint64_t step, uint64_t epoch, uint64_t total_steps) const;
};

// INI text with every key (the flags' names); cli/options reads it back (parse_ini and
// apply), where unknown keys and bad values are errors naming their origin (a file name
// or "checkpoint ...").
// The first line of every config.ini rbm train writes: a file without it is the user's.
inline constexpr const char* kConfigFileHeader = "# rbm training configuration (keys are the flags of `rbm train`)";
std::string to_ini(const TrainConfig& config);

std::string method_name(Method m);
Method parse_method(const std::string& text, const std::string& origin);
std::string binarize_name(Binarization b);
// --vbias-init zero | data, as TrainConfig::vbias_from_data
inline constexpr Choice<bool> kVbiasInits[] = {{"zero", false}, {"data", true}};
std::string vbias_init_name(bool from_data);
Binarization parse_binarization(const std::string& text, const std::string& origin);

}  // namespace rbm
