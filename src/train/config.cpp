// TrainConfig as INI text (the same keys as the flags), for checkpoints and run folders.
#include "train/config.hpp"

#include <algorithm>
#include <sstream>

#include "util/choices.hpp"
#include "util/shortest_text.hpp"

namespace rbm {

namespace {
constexpr Choice<Method> kMethods[] = {{"cd", Method::cd}, {"pcd", Method::pcd}, {"pt", Method::pt}};
constexpr Choice<Binarization> kBinarizations[] = {
    {"none", Binarization::none}, {"threshold", Binarization::threshold}, {"stochastic", Binarization::stochastic},
    {"dynamic", Binarization::dynamic}};
}  // namespace

std::string method_name(Method m) { return choice_name(m, kMethods); }
Method parse_method(const std::string& text, const std::string& origin) { return parse_choice(text, origin, kMethods); }
std::string vbias_init_name(bool from_data) { return choice_name(from_data, kVbiasInits); }
std::string binarize_name(Binarization b) { return choice_name(b, kBinarizations); }
Binarization parse_binarization(const std::string& text, const std::string& origin) {
    return parse_choice(text, origin, kBinarizations);
}

UpdateRule TrainConfig::update_at(uint64_t step, uint64_t epoch, uint64_t total_steps) const {
    UpdateRule rule = update;
    if (lr_final && total_steps > 1) {
        const double done = double(std::min(step, total_steps - 1)) / double(total_steps - 1);
        rule.learning_rate = float(double(update.learning_rate) + (double(*lr_final) - update.learning_rate) * done);
    }
    if (epoch < momentum_warmup) rule.momentum = initial_momentum;
    return rule;
}

std::vector<float> TrainConfig::tempered_betas() const {
    std::vector<float> betas;
    const std::size_t m_count = temperature_count();
    for (std::size_t m = 1; m < m_count; ++m)
        betas.push_back(float(1.0 - double(m) * (1.0 - double(hottest_beta())) / double(m_count - 1)));
    return betas;
}

std::string to_ini(const TrainConfig& c) {
    std::ostringstream o;
    o << kConfigFileHeader << "\n";
    o << "data = " << c.data << "\n";
    if (!c.test_data.empty()) o << "test-data = " << c.test_data << "\n";
    o << "validation-fraction = " << shortest_text(c.validation_fraction) << "\n";
    o << "limit = " << c.limit << "\n";
    o << "binarize = " << binarize_name(c.binarize.mode) << "\n";
    o << "binarize-threshold = " << shortest_text(c.binarize.threshold) << "\n";
    o << "binarize-seed = " << c.binarize.seed << "\n";
    o << "hidden = " << c.hidden << "\n";
    o << "method = " << method_name(c.method) << "\n";
    o << "k = " << c.k << "\n";
    o << "batch-size = " << c.batch_size << "\n";
    o << "chains = " << c.chains << "\n";
    if (c.method == Method::pt) {
        o << "temperatures = " << c.temperature_count() << "\n";
        o << "beta-min = " << shortest_text(c.hottest_beta()) << "\n";
    }
    o << "epochs = " << c.epochs << "\n";
    o << "lr = " << shortest_text(c.update.learning_rate) << "\n";
    o << "momentum = " << shortest_text(c.update.momentum) << "\n";
    o << "weight-decay = " << shortest_text(c.update.weight_decay) << "\n";
    if (c.lr_final) o << "lr-final = " << shortest_text(*c.lr_final) << "\n";
    o << "initial-momentum = " << shortest_text(c.initial_momentum) << "\n";
    o << "momentum-warmup = " << c.momentum_warmup << "\n";
    o << "centering = " << (c.centering ? "true" : "false") << "\n";
    o << "offset-rate = " << shortest_text(c.update.offset_rate) << "\n";
    o << "vbias-init = " << vbias_init_name(c.vbias_from_data) << "\n";
    if (!c.init_from.empty()) o << "init-from = " << c.init_from << "\n";
    o << "seed = " << c.seed << "\n";
    o << "out = " << c.out << "\n";
    o << "checkpoint-every = " << c.checkpoint_every << "\n";
    o << "keep-checkpoints = " << c.keep_checkpoints << "\n";
    o << "monitor-every = " << c.monitor_every << "\n";
    o << "monitor-examples = " << c.monitor_examples << "\n";
    o << "sample-every = " << c.sample_every << "\n";
    o << "filters = " << (c.filters ? "true" : "false") << "\n";
    o << "max-hours = " << shortest_text(c.max_hours) << "\n";
    o << "progress-every = " << shortest_text(c.progress_every) << "\n";
    o << "threads = " << c.threads << "\n";
    o << "device = " << device_name(c.device) << "\n";
    o << "comm = " << comm_name(c.comm) << "\n";
    o << "tf32 = " << (c.tf32 ? "true" : "false") << "\n";
    return o.str();
}

}  // namespace rbm
