// Sample tensors: what `rbm sample` and training's --sample-every write.
//   /mean_field  float32 [n_samples, n_chains, n_visible]  p(v | h) at each recorded step
//   /samples     uint8   [n_samples, n_chains, n_visible]  the binary visible states
//   / attrs: rbm_file_kind="samples", format_version, and how they were drawn
//            (source checkpoint, steps_between, start="data"|"noise", seed, ...)
//   /start_index int64 [n_chains]: the example each chain started from (-1 for noise)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rbm {

struct SampleSet {
    std::size_t n_samples = 0, n_chains = 0, n_visible = 0;
    std::size_t image_height = 0, image_width = 0;  // for PNG tiling, 0 if unknown
    std::vector<float> mean_field;   // [n_samples, n_chains, n_visible]
    std::vector<uint8_t> binary;     // same shape
    std::vector<int64_t> start_index;
    std::map<std::string, std::string> text_attrs;  // how they were drawn
    std::map<std::string, double> number_attrs;
};

// Atomic write (temporary name, fsync, rename).
void write_samples(const std::string& path, const SampleSet& set);
// Fails, naming `path`, unless writing samples there would replace nothing or only a
// samples file: never a checkpoint, the run's metrics or a file rbm did not write.
void check_samples_destination(const std::string& path);
SampleSet read_samples(const std::string& path);

}  // namespace rbm
