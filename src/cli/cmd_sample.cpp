// `rbm sample`: Gibbs chains from a checkpoint, started from random examples of a data
// file (or from noise), recorded every --plot-every steps, as the tutorial's sampling;
// on the CPU engine or the CUDA engine (--device), which draw the same Philox numbers.
#include <filesystem>
#include <iostream>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "dist/communicator.hpp"
#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "io/checkpoint.hpp"
#include "io/data_rows.hpp"
#include "io/dataset.hpp"
#include "io/png_tiles.hpp"
#include "io/samples_file.hpp"
#include "util/check.hpp"
#include "util/paths.hpp"

namespace rbm::cli {
namespace {

const char* kSampleUsage =
    "usage: rbm sample --checkpoint FILE [--data FILE] [options]\n"
    "\n"
    "Runs --chains Gibbs chains of the checkpoint's RBM, started from distinct random\n"
    "examples of --data (or from uniform noise without it), and records --samples states\n"
    "per chain, --plot-every Gibbs steps apart. Writes --out (HDF5: /mean_field and\n"
    "/samples, [samples, chains, visible]) and a PNG beside it (rows: samples, columns:\n"
    "chains, mean-field images as the tutorial draws them). The chains run on the CPU or\n"
    "a GPU (--device); both draw the same random numbers, so their samples differ only\n"
    "where a chain met a probability within rounding of its draw.\n";

struct SampleRequest {
    std::string checkpoint, data, out = "samples.h5";
    std::size_t chains = 20, samples = 10, plot_every = 1000;
    uint32_t seed = 123;
    int threads = 0;
    DeviceKind device = DeviceKind::auto_select;
};

SampleRequest parse_request(const po::variables_map& vm) {
    SampleRequest r;
    const std::string origin = "command line";
    auto text = [&](const char* key) { return vm[key].as<std::string>(); };
    r.checkpoint = checkpoint_option(vm);
    if (vm.count("data")) r.data = text("data");
    if (vm.count("out")) r.out = text("out");
    if (vm.count("chains")) r.chains = parse_count("--chains", text("chains"), origin, 1, 1u << 20);
    if (vm.count("samples")) r.samples = parse_count("--samples", text("samples"), origin, 1, 1u << 20);
    if (vm.count("plot-every")) r.plot_every = parse_count("--plot-every", text("plot-every"), origin, 1, 1u << 30);
    if (vm.count("seed")) r.seed = uint32_t(parse_count("--seed", text("seed"), origin, 0, UINT32_MAX));
    if (vm.count("threads")) r.threads = int(parse_count("--threads", text("threads"), origin, 0, 1024));
    if (vm.count("device")) r.device = parse_device(text("device"), origin + ": --device");
    return r;
}

// Starting states: distinct random examples (partial Fisher-Yates over the row indices)
// or Bernoulli(0.5) noise, from the sample_start stream.
std::vector<float> start_states(const SampleRequest& r, std::size_t nv, std::vector<int64_t>& start_index,
                                std::size_t& image_h, std::size_t& image_w) {
    const Stream stream = Stream::make(r.seed, 0, Purpose::sample_start);
    std::vector<float> v(r.chains * nv);
    start_index.assign(r.chains, -1);
    if (r.data.empty()) {
        for (std::size_t e = 0; e < v.size(); ++e) v[e] = uniform_at(stream, 0, 1, e) < 0.5f ? 1.0f : 0.0f;
        return v;
    }
    const Dataset data = read_rows(r.data);
    if (data.n_cols != nv) fail(r.data, " has ", data.n_cols, " values per example, the model ", nv);
    if (data.n_rows < r.chains) fail(r.data, " has ", data.n_rows, " examples, fewer than --chains ", r.chains);
    image_h = data.image_height;
    image_w = data.image_width;
    std::vector<uint64_t> rows(data.n_rows);
    std::iota(rows.begin(), rows.end(), 0);
    for (std::size_t c = 0; c < r.chains; ++c) {
        const auto words = stream.block(0, 0, uint32_t(c));
        const std::size_t j = c + std::size_t((uint64_t(words.v[0]) * (data.n_rows - c)) >> 32);
        std::swap(rows[c], rows[j]);
        start_index[c] = int64_t(rows[c]);
        std::copy(data.row(rows[c]), data.row(rows[c]) + nv, v.begin() + c * nv);
    }
    return v;
}

// Runs the chains and records --samples states, --plot-every Gibbs steps apart, with how
// they were drawn as the file's attributes.
SampleSet draw_samples(const SampleRequest& r, Engine& engine, const Checkpoint& ckpt) {
    const RbmShape shape = ckpt.params.shape;
    SampleSet set;
    set.n_samples = r.samples;
    set.n_chains = r.chains;
    set.n_visible = shape.n_visible;
    std::vector<float> v = start_states(r, shape.n_visible, set.start_index, set.image_height, set.image_width);
    if (r.data.empty()) {  // from noise: the training data's shape, as the checkpoint keeps it
        set.image_height = ckpt.image_shape_stored ? ckpt.image_height : data::square_side(shape.n_visible);
        set.image_width = ckpt.image_shape_stored ? ckpt.image_width : set.image_height;
    }
    const std::size_t block = r.chains * shape.n_visible;
    set.mean_field.resize(r.samples * block);
    set.binary.resize(r.samples * block);
    const Stream stream = Stream::make(r.seed, 0, Purpose::sample);
    for (std::size_t m = 0; m < r.samples; ++m) {
        engine.gibbs_visible(v.data(), set.mean_field.data() + m * block, r.chains, int(r.plot_every), stream,
                             m * r.plot_every);
        for (std::size_t e = 0; e < block; ++e) set.binary[m * block + e] = uint8_t(v[e]);
    }
    set.text_attrs["checkpoint"] = absolute_path(r.checkpoint);
    set.text_attrs["start"] = r.data.empty() ? "noise" : "data";
    set.text_attrs["device"] = engine.describe();
    if (!r.data.empty()) set.text_attrs["start_data"] = absolute_path(r.data);
    set.number_attrs["plot_every"] = double(r.plot_every);
    set.number_attrs["seed"] = double(r.seed);
    set.number_attrs["checkpoint_step"] = double(ckpt.step);
    return set;
}

}  // namespace

int run_sample(const std::vector<std::string>& args) {
    po::options_description options("rbm sample options");
    auto text = [] { return po::value<std::string>(); };
    options.add_options()
        ("checkpoint", text(), "checkpoint file to sample from, or a run directory for its newest (required)")
        ("data", text(), "start chains from random examples of this file (default: from noise)")
        ("chains", text(), "chains (default 20)")
        ("samples", text(), "samples recorded per chain (default 10)")
        ("plot-every", text(), "Gibbs steps between recorded samples (default 1000)")
        ("seed", text(), "seed of the sampling streams (default 123)")
        ("out", text(), "output HDF5 file; the PNG goes beside it (default samples.h5)")
        ("threads", text(), "CPU threads (default 0: every core)")
        ("device", text(), "auto | cpu | cuda: where the chains run (default auto: a GPU when one is visible)")
        ("help,h", "this help");
    po::variables_map vm;
    parse_flags(args, options, vm);
    if (vm.count("help")) {
        std::cout << kSampleUsage << "\n" << options << std::endl;
        return 0;
    }
    const SampleRequest r = parse_request(vm);
    if (Communicator().size() > 1)
        fail("rbm sample runs as one process (its chains are independent already): launch it without "
             "mpirun or srun, or with one task");
    check_samples_destination(r.out);
    const std::string png = std::filesystem::path(r.out).replace_extension(".png").string();
    if (png == r.out) fail("--out ", r.out, ": the sample grid is written beside it as .png; name the samples file .h5");
    // The picture beside a samples file is the one rbm wrote with it; alone, it is someone else's.
    std::error_code png_ec, out_ec;
    if (std::filesystem::exists(png, png_ec) && !std::filesystem::exists(r.out, out_ec) && !out_ec)
        fail("--out ", r.out, ": '", png, "' exists beside no samples file, and the sample grid would replace "
             "it; choose another --out, or remove it");
    if (r.device == DeviceKind::cuda) require_cuda_device();  // before any work
    set_blas_threads(r.threads);
    const Checkpoint ckpt = read_checkpoint(r.checkpoint);
    const RbmShape shape = ckpt.params.shape;
    // Refused by name rather than as bad_alloc: [samples, chains, visible] as floats and bytes.
    const double need = 5.0 * double(r.samples) * double(r.chains) * double(shape.n_visible);
    if (need > double(data::physical_memory()))
        fail("--samples ", r.samples, " x --chains ", r.chains, " of ", shape.n_visible, " visible units need ",
             need / double(1ull << 30), " GiB, more than this machine's memory");
    EngineOptions engine_options;
    engine_options.device = r.device;
    std::unique_ptr<Engine> engine = make_engine(shape, engine_options);
    engine->set_params(ckpt.params);
    std::cout << "sampling on " << engine->describe() << std::endl;

    const SampleSet set = draw_samples(r, *engine, ckpt);
    write_samples(r.out, set);
    std::cout << "wrote " << r.samples << " samples of " << r.chains << " chains, " << r.plot_every
              << " Gibbs steps apart, to " << r.out;
    if (set.image_height) {
        write_png(png, tile_images(set.mean_field.data(), r.samples * r.chains, set.image_height,
                                   set.image_width, r.samples, r.chains, 1, true));
        std::cout << " and " << png;
    }
    std::cout << std::endl;
    return 0;
}

}  // namespace rbm::cli
