// `rbm transform`: a checkpoint's RBM as a feature extractor — p(h = 1 | v) of every
// example of a data set, with its labels when given, into one HDF5 file a classifier
// reads (scikit-learn's BernoulliRBM.transform, for rbm's checkpoints). One product per
// 256 rows on the CPU: all of MNIST takes about a second, so there is no GPU path.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "dist/communicator.hpp"
#include "eval/metrics.hpp"
#include "io/checkpoint.hpp"
#include "io/data_rows.hpp"
#include "io/dataset.hpp"
#include "io/features_file.hpp"
#include "util/check.hpp"
#include "util/paths.hpp"
#include "util/shortest_text.hpp"

namespace rbm::cli {
namespace {

const char* kTransformUsage =
    "usage: rbm transform --checkpoint FILE --data FILE [--labels FILE] [options]\n"
    "\n"
    "Writes the hidden units' probabilities p(h_j = 1 | v) of every example of --data under\n"
    "the checkpoint's RBM (the features a classifier is trained on) to --out: HDF5 /features\n"
    "float32 [examples, hidden], and with --labels (an IDX label file, raw or .gz) /labels\n"
    "uint8 [examples]. The examples are x/255, whatever the checkpoint was trained on, unless\n"
    "--binarize says otherwise.\n";

struct TransformRequest {
    std::string checkpoint, data, labels, out = "features.h5";
    std::size_t limit = 0;
    BinarizeSpec binarize;  // none: the mean-field features of x/255
    int threads = 0;
};

TransformRequest parse_request(const po::variables_map& vm) {
    TransformRequest r;
    const std::string origin = "command line";
    auto text = [&](const char* key) { return vm[key].as<std::string>(); };
    if (!vm.count("data")) fail("--data is required (the examples to transform: IDX or FILE.h5:/dataset)");
    r.checkpoint = checkpoint_option(vm);
    r.data = text("data");
    if (vm.count("labels")) r.labels = text("labels");
    if (vm.count("labels") && r.labels.empty()) fail("--labels must name an IDX label file");
    if (vm.count("out")) r.out = text("out");
    if (vm.count("limit")) r.limit = parse_count("--limit", text("limit"), origin, 0, UINT64_MAX);
    r.binarize = parse_binarize_once(vm, r.binarize);
    if (vm.count("threads")) r.threads = int(parse_count("--threads", text("threads"), origin, 0, 1024));
    return r;
}

// The rows to transform, checked against the model and memory before anything is read,
// and their labels, checked against the data file's whole row count.
FeatureSet read_inputs(const TransformRequest& r, RbmShape shape, Dataset& data) {
    const SourceInfo info = probe_source(r.data);
    if (info.n_cols != shape.n_visible)
        fail(r.data, " has ", info.n_cols, " values per example, the checkpoint's RBM ", shape.n_visible,
             " visible units");
    const std::size_t n = r.limit ? std::min(r.limit, info.n_rows) : info.n_rows;
    const double need = 4.0 * double(n) * double(shape.n_visible + shape.n_hidden);
    if (need > double(data::physical_memory()))
        fail(r.data, ": ", n, " examples of ", shape.n_visible, " values and their ", shape.n_hidden,
             " features need ", need / double(1ull << 30), " GiB, more than this machine's memory (--limit lowers it)");
    FeatureSet set;
    if (!r.labels.empty()) {
        set.labels = read_idx_labels(r.labels);
        check_labels_match(r.data, info.n_rows, r.labels, set.labels.size());
        set.labels.resize(n);
    }
    data = read_rows(r.data, {0, n});
    binarize(data, r.binarize);
    return set;
}

// How the features spread, for the log: units that hardly vary carry little information
// (an RBM's dead or saturated units).
void report_spread(const FeatureSet& set) {
    std::vector<double> unit_mean(set.n_hidden, 0.0);
    double mean = 0;
    for (std::size_t e = 0; e < set.features.size(); ++e) unit_mean[e % set.n_hidden] += set.features[e];
    for (double& m : unit_mean) {
        mean += m;
        m /= double(std::max<std::size_t>(set.n_examples, 1));
    }
    mean /= double(std::max<std::size_t>(set.features.size(), 1));
    const auto constant = std::count_if(unit_mean.begin(), unit_mean.end(), [](double m) { return m < 0.01 || m > 0.99; });
    std::cout << "mean activation " << mean << "; " << constant << " of " << set.n_hidden
              << " hidden units nearly constant (mean below 0.01 or above 0.99)" << std::endl;
}

}  // namespace

int run_transform(const std::vector<std::string>& args) {
    po::options_description options("rbm transform options");
    auto text = [] { return po::value<std::string>(); };
    options.add_options()
        ("checkpoint", text(), "checkpoint file whose RBM transforms the data, or a run directory for its newest "
                               "(required)")
        ("data", text(), "examples to transform: IDX (raw or .gz) or FILE.h5:/dataset (required)")
        ("labels", text(), "IDX label file of --data's examples, copied to /labels")
        ("limit", text(), "transform only the first N examples (default 0: all)")
        ("binarize", text(), "none | threshold | stochastic (default none: x/255)")
        ("binarize-threshold", text(), "threshold: x >= T is 1 (default 0.5)")
        ("binarize-seed", text(), "stochastic: seed of the draws (default 0)")
        ("out", text(), "output HDF5 file (default features.h5)")
        ("threads", text(), "CPU threads (default 0: every core)")
        ("help,h", "this help");
    po::variables_map vm;
    parse_flags(args, options, vm);
    if (vm.count("help")) {
        std::cout << kTransformUsage << "\n" << options << std::endl;
        return 0;
    }
    const TransformRequest r = parse_request(vm);
    if (Communicator().size() > 1)
        fail("rbm transform runs as one process: launch it without mpirun or srun, or with one task");
    check_features_destination(r.out);
    set_blas_threads(r.threads);
    const Checkpoint ckpt = read_checkpoint(r.checkpoint);
    Dataset data;
    FeatureSet set = read_inputs(r, ckpt.params.shape, data);
    set.n_examples = data.n_rows;
    set.n_hidden = ckpt.params.shape.n_hidden;
    set.features = eval::hidden_means(ckpt.params, data.values.data(), data.n_rows);
    // Absolute paths: a reader of the file (tools/classify_features.py) finds them from anywhere.
    set.attrs.text = {{"checkpoint", absolute_path(r.checkpoint)}, {"data_file", absolute_path(r.data)},
                      {"feature", "p(h=1|v)"}, {"binarize", choice_name(r.binarize.mode, kOnceBinarizations)}};
    if (!r.labels.empty()) set.attrs.text["labels_file"] = absolute_path(r.labels);
    set.attrs.number = {{"checkpoint_step", double(ckpt.step)}};
    if (r.binarize.mode == Binarization::threshold)  // as given: 0.3, not the float's 0.30000001192...
        set.attrs.number["binarize_threshold"] = std::stod(shortest_text(r.binarize.threshold));
    if (r.binarize.mode == Binarization::stochastic) set.attrs.number["binarize_seed"] = r.binarize.seed;
    write_features(r.out, set);
    std::cout << "wrote the features of " << set.n_examples << " examples [" << set.n_examples << ", "
              << set.n_hidden << "]" << (set.labels.empty() ? "" : " and their labels") << " to " << r.out
              << std::endl;
    report_spread(set);
    return 0;
}

}  // namespace rbm::cli
