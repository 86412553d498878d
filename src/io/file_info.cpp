// `rbm info` lets a person check what a file holds without Python: it reuses the
// validating readers, so a file it describes is also one rbm can load.
#include "io/file_info.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "io/checkpoint.hpp"
#include "io/features_file.hpp"
#include "io/h5.hpp"
#include "io/metrics_file.hpp"
#include "io/samples_file.hpp"

namespace rbm {

namespace {

void describe_range(std::ostream& out, const char* label, const float* v, std::size_t n) {
    if (n == 0) return;
    auto [lo, hi] = std::minmax_element(v, v + n);
    double mean = std::accumulate(v, v + n, 0.0) / static_cast<double>(n);
    out << "  " << std::left << std::setw(6) << label << " min " << *lo << "  max " << *hi << "  mean " << mean
        << "\n";
}

void indent_lines(std::ostream& out, const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) out << "    " << line << "\n";
}

void describe_checkpoint(const std::string& path, const std::string& version, std::ostream& out) {
    Checkpoint c = read_checkpoint(path);
    const RbmShape& s = c.params.shape;
    out << path << ": rbm checkpoint (format version " << kCheckpointFormatVersion << version << ")\n"
        << "  model: " << s.n_visible << " visible (" << c.visible_type << ") x " << s.n_hidden
        << " hidden (" << c.hidden_type << ")\n"
        << "  W: [" << s.n_visible << ", " << s.n_hidden << "]  vbias: [" << s.n_visible << "]  hbias: ["
        << s.n_hidden << "]\n";
    describe_range(out, "W", c.params.W(), s.weight_count());
    describe_range(out, "vbias", c.params.vbias(), s.n_visible);
    describe_range(out, "hbias", c.params.hbias(), s.n_hidden);
    if (c.image_shape_stored && c.image_height)
        out << "  trained on images of " << c.image_height << " x " << c.image_width << "\n";
    else if (c.image_shape_stored)
        out << "  trained on data that are not images\n";
    out << "  step: " << c.step << "  epoch: " << c.epoch << " (step " << c.step_in_epoch << " of " << c.steps_per_epoch << " in it)\n"
        << "  seed: " << c.seed << "  world size: " << c.world_size << "\n"
        << "  persistent chains: " << c.n_chains_total() << " [" << c.n_chains_total() << ", " << s.n_hidden
        << "]\n";
    if (!c.tempered_betas.empty()) {
        out << "  parallel tempering: " << c.tempered_betas.size() << " more level(s) of " << c.n_chains_total()
            << " chains at inverse temperatures";
        for (float beta : c.tempered_betas) out << " " << beta;
        out << " (/chains/tempered_hidden [" << c.tempered_betas.size() << ", " << c.n_chains_total() << ", "
            << s.n_hidden << "])\n";
        if (!c.tempered_swaps.empty()) {
            const std::size_t levels = c.tempered_betas.size();
            out << "  swaps accepted / proposed this epoch so far, per neighbouring pair:";
            for (std::size_t m = 0; m < levels; ++m) out << " " << c.tempered_swaps[levels + m] << "/" << c.tempered_swaps[m];
            out << "\n";
        }
    }
    out << "  epoch metric sums: " << c.epoch_metric_sums.size() << " values\n";
    if (!c.visible_offset.empty()) {
        out << "  centering offsets: visible [" << s.n_visible << "]  hidden [" << s.n_hidden << "]\n";
        describe_range(out, "visible_offset", c.visible_offset.data(), s.n_visible);
        describe_range(out, "hidden_offset", c.hidden_offset.data(), s.n_hidden);
    }
    if (c.train_rows)
        out << "  training rows: " << c.train_rows << " (data fingerprint " << std::hex << c.data_fingerprint
            << std::dec << ")\n";
    out << "  config:\n";
    indent_lines(out, c.config_ini);
}

void describe_metrics(const std::string& path, const std::string& version, std::ostream& out) {
    std::vector<MetricsRow> rows = read_metrics(path);
    out << path << ": rbm metrics (format version 1" << version << ")\n"
        << "  rows: " << rows.size() << "\n";
    if (rows.empty()) return;
    const MetricsRow& r = rows.back();
    out << "  first step: " << rows.front().step << "\n"
        << "  last row:\n"
        << "    step " << r.step << "\n    epoch " << r.epoch << "\n    pseudo_likelihood "
        << r.pseudo_likelihood << "\n    reconstruction_xent " << r.reconstruction_xent
        << "\n    free_energy_train " << r.free_energy_train << "\n    free_energy_valid "
        << r.free_energy_valid << "\n    free_energy_gap " << r.free_energy_gap << "\n    learning_rate "
        << r.learning_rate << "\n    examples_per_s " << r.examples_per_s << "\n    wall_s " << r.wall_s
        << "\n";
    if (!std::isnan(r.swap_acceptance_min)) out << "    swap_acceptance_min " << r.swap_acceptance_min << "\n";
    if (!std::isnan(r.ranks)) out << "    ranks " << r.ranks << "\n";
    if (!std::isnan(r.process)) out << "    process " << r.process << " (1: the run's first; one more per resume)\n";
}

void describe_samples(const std::string& path, const std::string& version, std::ostream& out) {
    SampleSet s = read_samples(path);
    out << path << ": rbm samples (format version 1" << version << ")\n"
        << "  mean_field: [" << s.n_samples << ", " << s.n_chains << ", " << s.n_visible << "] float32\n";
    describe_range(out, "mean_field", s.mean_field.data(), s.mean_field.size());
    if (!s.binary.empty())
        out << "  samples: [" << s.n_samples << ", " << s.n_chains << ", " << s.n_visible << "] uint8\n";
    if (!s.start_index.empty()) {
        out << "  start_index: [" << s.n_chains << "] int64";
        if (std::all_of(s.start_index.begin(), s.start_index.end(), [](int64_t i) { return i < 0; }))
            out << (s.text_attrs.count("start") ? " (all -1: the chains started from noise)"
                                                : " (all -1: persistent chains, started at h = 0 when training began)");
        else
            out << " (the examples the chains started from: " << s.start_index.front()
                << (s.n_chains > 1 ? ", ...)" : ")");
        out << "\n";
    }
    if (s.image_height && s.image_width) out << "  image: " << s.image_height << " x " << s.image_width << "\n";
    for (const auto& [name, value] : s.text_attrs) out << "  " << name << ": " << value << "\n";
    for (const auto& [name, value] : s.number_attrs) out << "  " << name << ": " << value << "\n";
}

void describe_features(const std::string& path, const std::string& version, std::ostream& out) {
    const FeatureSet s = read_features(path);
    out << path << ": rbm features (format version 1" << version << ")\n"
        << "  features: [" << s.n_examples << ", " << s.n_hidden << "] float32, p(h = 1 | v)\n";
    describe_range(out, "features", s.features.data(), s.features.size());
    if (!s.labels.empty()) {
        std::vector<std::size_t> count(256, 0);
        for (uint8_t l : s.labels) ++count[l];
        out << "  labels: [" << s.n_examples << "] uint8, " << std::count_if(count.begin(), count.end(), [](std::size_t c) { return c > 0; })
            << " distinct\n";
    }
    for (const auto& [name, value] : s.attrs.text) out << "  " << name << ": " << value << "\n";
    for (const auto& [name, value] : s.attrs.number) out << "  " << name << ": " << value << "\n";
}

}  // namespace

void describe_file(const std::string& path, std::ostream& out) {
    std::string kind, version;
    {
        h5::Handle file = h5::open_file_read(path);
        kind = h5::file_kind(file, path);
        RBM_REQUIRE(!kind.empty(), "'" << path << "' is not an rbm file (no rbm_file_kind attribute)");
        if (h5::has_attr(file, "rbm_version"))
            version = ", written by rbm " + h5::get_attr_string(file, "rbm_version", path);
    }
    if (kind == "checkpoint") return describe_checkpoint(path, version, out);
    if (kind == "metrics") return describe_metrics(path, version, out);
    if (kind == "samples") return describe_samples(path, version, out);
    if (kind == "features") return describe_features(path, version, out);
    fail("'", path, "' is an rbm file of unknown kind '", kind, "'");
}

}  // namespace rbm
