// Rank 0's files of a training run (see run_outputs.hpp).
#include "train/run_outputs.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <cstring>
#include <sstream>

#include "io/h5.hpp"
#include "io/png_tiles.hpp"
#include "io/samples_file.hpp"
#include "util/check.hpp"
#include "util/paths.hpp"

namespace rbm {

namespace fs = std::filesystem;

namespace {
std::string epoch_name(const std::string& dir, uint64_t epoch, const char* ext) {
    char name[64];
    std::snprintf(name, sizeof name, "epoch-%04llu.%s", static_cast<unsigned long long>(epoch), ext);
    return (fs::path(dir) / name).string();
}

// A path where the run needs a directory (or a directory to make one in) holds something else.
void refuse_non_directory(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_symlink(fs::symlink_status(dir, ec)) && !fs::exists(dir, ec))
        fail("'", dir.string(), "' is a symbolic link to '", fs::read_symlink(dir, ec).string(), "', which does not exist");
    if (fs::exists(fs::symlink_status(dir, ec)) && !fs::is_directory(dir, ec))
        fail("'", dir.string(), "' exists and is not a directory, which the run needs there");
}

void make_dir(const fs::path& dir) {
    refuse_non_directory(dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail("cannot create directory '", dir.string(), "': ", ec.message());
}

// --dry-run: whether make_dir(dir) and writing in it would succeed, creating nothing. A
// directory still to be made is checked at its nearest existing ancestor.
void check_dir_writable(const fs::path& dir) {
    std::error_code ec;
    fs::path existing = fs::absolute(dir, ec);
    // The nearest path that is there at all, a dangling link included (it is in the way).
    while (!fs::exists(fs::symlink_status(existing, ec)) && existing.has_parent_path() &&
           existing != existing.parent_path())
        existing = existing.parent_path();
    refuse_non_directory(existing);
    if (::access(existing.c_str(), W_OK | X_OK) == 0) return;
    const int err = errno;
    fail("cannot ", existing == fs::absolute(dir, ec) ? "write in '" : "create directory '", dir.string(), "': '",
         existing.string(), "': ", std::strerror(err));
}
// A file rbm writes atomically under `folder` of a run directory, by its temporary name
// (write_atomically's NAME.tmp).
bool is_unfinished_output(const std::string& folder, const std::string& name) {
    if (folder.empty()) return name == "config.ini.tmp" || name == "metrics.h5.tmp";
    if (folder == "checkpoints") return name.starts_with("step-") && name.ends_with(".h5.tmp");
    return name.starts_with("epoch-") && (name.ends_with(".png.tmp") || name.ends_with(".h5.tmp"));
}

// What a process killed mid-write left under a temporary name; only while this run holds
// the directory's lock is no one else writing them.
std::size_t remove_unfinished_outputs(const fs::path& out) {
    std::size_t removed = 0;
    for (const std::string folder : {"", "checkpoints", "filters", "samples"}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(out / folder, ec)) {
            const std::string name = entry.path().filename().string();
            if (is_unfinished_output(folder, name) && entry.is_regular_file(ec) && fs::remove(entry.path(), ec))
                ++removed;
        }
    }
    return removed;
}

}  // namespace

RunOutputs::RunOutputs(const TrainConfig& config, const Communicator& comm, const RunData& data)
    : config_(config), comm_(comm), image_height_(data.image_height), image_width_(data.image_width) {}

// The run's config.ini replaces the file of that name: refused where it is not one rbm
// wrote (a user's own configuration kept in --out and given with --config, say).
void RunOutputs::refuse_foreign_config() const {
    const std::string ini = (fs::path(config_.out) / "config.ini").string();
    std::error_code ec;
    if (!fs::exists(ini, ec)) return;
    std::ifstream in(ini);
    std::string first;
    std::getline(in, first);
    if (first != kConfigFileHeader)
        fail("'", ini, "' exists and was not written by rbm train; the run writes its configuration there: "
             "move that file, or choose another --out");
}

// Every folder the run writes into.
std::vector<std::string> RunOutputs::run_folders() const {
    const fs::path out = config_.out;
    std::vector<std::string> folders = {out.string(), (out / "checkpoints").string()};
    if (config_.filters && image_height_) folders.push_back((out / "filters").string());
    if (config_.sample_every > 0 && keeps_chains(config_.method)) folders.push_back((out / "samples").string());
    return folders;
}

// What the run would replace and must not: refused before anything is created.
void RunOutputs::refuse_foreign_files() const {
    refuse_foreign_config();
    check_metrics_writable((fs::path(config_.out) / "metrics.h5").string());
}

void RunOutputs::prepare() {
    if (!comm_.is_root()) return;
    refuse_foreign_files();  // before anything is created in the user's folder
    // Every folder the run will write into, now rather than at the first epoch's end.
    for (const std::string& folder : run_folders()) make_dir(folder);
    if (config_.sample_every > 0 && config_.method == Method::cd)
        std::cerr << "rbm: warning: --sample-every: CD keeps no persistent chains, so no samples are written "
                     "(rbm sample draws them from a checkpoint)" << std::endl;
    std::string warning;
    lock_ = std::make_unique<DirLock>(config_.out, warning);
    if (!warning.empty()) std::cerr << "rbm: warning: " << warning << std::endl;
    if (lock_->held())
        if (const std::size_t removed = remove_unfinished_outputs(config_.out))
            std::cout << "removed " << removed << " unfinished file(s) (*.tmp) an interrupted run left in "
                      << config_.out << std::endl;
}

void RunOutputs::check_writable() const {
    if (!comm_.is_root()) return;
    refuse_foreign_files();
    for (const std::string& folder : run_folders()) check_dir_writable(folder);
    DirLock::check_can_lock(config_.out);
}

void RunOutputs::write_config() {
    if (!comm_.is_root()) return;
    const std::string ini = (fs::path(config_.out) / "config.ini").string();
    h5::write_atomically(ini, [&](const std::string& tmp) {
        std::ofstream out(tmp);
        out << to_ini(config_);
        out.close();
        if (!out) fail("cannot write '", tmp, "'", errno ? std::string(": ") + std::strerror(errno) : "");
    });
}

void RunOutputs::open_metrics(std::optional<uint64_t> keep_until_step) {
    if (!comm_.is_root()) return;
    const std::string path = (fs::path(config_.out) / "metrics.h5").string();
    metrics_ = std::make_unique<MetricsFile>(path, keep_until_step);
}

void RunOutputs::append_metrics(MetricsRow row, bool epoch_row) {
    if (!comm_.is_root()) return;
    row.ranks = double(comm_.size());
    row.process = metrics_->process();
    metrics_->append(row);
    std::ostringstream line;
    line << std::fixed << std::setprecision(3);
    if (epoch_row) line << "epoch " << std::setw(4) << std::llround(row.epoch) << "/" << config_.epochs;
    else line << "epoch " << std::setw(9) << row.epoch;
    line << "  step " << std::setw(8) << row.step << "  cost (PL) " << std::setw(9) << row.pseudo_likelihood
         << "  recon xent " << std::setw(8) << row.reconstruction_xent << "  FE gap " << std::setw(7)
         << row.free_energy_gap << "  " << std::setprecision(0) << std::setw(7) << row.examples_per_s
         << " ex/s  " << std::setprecision(1) << row.wall_s << " s";
    std::cout << line.str() << std::endl;
}

void RunOutputs::write_checkpoint(const Checkpoint& ckpt) {
    rbm::write_checkpoint(checkpoint_path(config_.out, ckpt.step), ckpt);
    prune_checkpoints(config_.out, config_.keep_checkpoints);
}

void RunOutputs::write_filters(const Engine& engine, uint64_t epoch) {
    if (!comm_.is_root() || !image_height_) return;
    const RbmShape shape = engine.shape();
    ParamBuffer params(shape);
    engine.get_params(params);
    // Filter j is column j of W: transpose the first (up to) 100 into rows.
    const std::size_t count = std::min<std::size_t>(100, shape.n_hidden), nv = shape.n_visible;
    std::vector<float> filters(count * nv);
    for (std::size_t j = 0; j < count; ++j)
        for (std::size_t i = 0; i < nv; ++i) filters[j * nv + i] = params.W()[i * shape.n_hidden + j];
    const std::string dir = (fs::path(config_.out) / "filters").string();  // made by prepare()
    write_png(epoch_name(dir, epoch, "png"), tile_images(filters.data(), count, image_height_, image_width_, 10, 10, 1, true));
}

void RunOutputs::write_chain_samples(Engine& engine, uint64_t epoch, uint64_t step) {
    const std::size_t nv = engine.shape().n_visible;
    const std::vector<uint8_t> hidden = engine.get_chains();
    const std::size_t n = hidden.size() / engine.shape().n_hidden;
    if (n == 0) return;  // CD keeps no chains
    std::vector<float> mean(n * nv), sample(n * nv);
    engine.chain_visibles(mean.data(), sample.data(), Stream::make(config_.seed, uint32_t(comm_.rank()), Purpose::sample), step);
    const std::vector<uint8_t> all_mean = comm_.gather(mean.data(), mean.size() * sizeof(float));
    const std::vector<uint8_t> all_sample = comm_.gather(sample.data(), sample.size() * sizeof(float));
    if (!comm_.is_root()) return;
    SampleSet set;
    set.n_samples = 1;
    set.n_chains = n * std::size_t(comm_.size());
    set.n_visible = nv;
    set.image_height = image_height_;
    set.image_width = image_width_;
    set.mean_field.resize(set.n_chains * nv);
    std::memcpy(set.mean_field.data(), all_mean.data(), all_mean.size());
    std::vector<float> binary(set.n_chains * nv);
    std::memcpy(binary.data(), all_sample.data(), all_sample.size());
    set.binary.assign(binary.begin(), binary.end());
    set.start_index.assign(set.n_chains, -1);
    set.text_attrs["source"] = "persistent chains of training";
    set.text_attrs["run"] = absolute_path(config_.out);  // its config.ini and checkpoints
    set.number_attrs["step"] = double(step);
    set.number_attrs["epoch"] = double(epoch);
    const std::string dir = (fs::path(config_.out) / "samples").string();  // made by prepare()
    write_samples(epoch_name(dir, epoch, "h5"), set);
    if (image_height_) {
        const std::size_t shown = std::min<std::size_t>(set.n_chains, 100);
        write_png(epoch_name(dir, epoch, "png"),
                  tile_images(set.mean_field.data(), shown, image_height_, image_width_, (shown + 9) / 10,
                              std::min<std::size_t>(shown, 10), 1, true));
    }
}

void RunOutputs::print_summary(std::ostream& out) const {
    const fs::path dir = fs::absolute(config_.out);
    const std::optional<std::string> found = find_newest_checkpoint(config_.out);
    const std::string newest = found ? fs::absolute(*found).string() : "(none)";
    // A folder is named only when something was written in it (--sample-every 5 in a
    // 2-epoch run writes no samples).
    const auto holds_files = [](const fs::path& d) {
        std::error_code ec;
        return fs::is_directory(d, ec) && !fs::is_empty(d, ec);
    };
    out << "\nresults in " << dir.string() << ":\n"
        << "  checkpoint  " << newest << "  (all: checkpoints/)\n"
        << "  metrics     " << (dir / "metrics.h5").string() << "\n";
    if (holds_files(dir / "filters")) out << "  filters     " << (dir / "filters").string() << "/epoch-NNNN.png\n";
    if (holds_files(dir / "samples"))
        out << "  samples     " << (dir / "samples").string() << "/epoch-NNNN.{h5,png}\n";
    out << "  config      " << (dir / "config.ini").string() << "\n"
        << "inspect with: rbm info " << newest << std::endl;
}

}  // namespace rbm
