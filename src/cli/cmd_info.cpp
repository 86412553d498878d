// `rbm info FILE|RUN_DIR...`: what an rbm HDF5 file, or a run directory, holds, for people.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "io/checkpoint.hpp"
#include "io/dir_lock.hpp"
#include "io/file_info.hpp"
#include "util/check.hpp"

namespace rbm::cli {
namespace {

namespace fs = std::filesystem;

// Files (or links to files) named *EXTENSION in `folder`: what a resume or a reader would find.
std::size_t count_files(const fs::path& folder, const std::string& extension) {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code entry_ec;  // a dangling link: not counted, and the listing goes on
        if (it->path().extension() == extension && it->is_regular_file(entry_ec)) ++n;
    }
    return n;
}

// Whether a run is training now (a process holds its lock), else how far it got against
// the epochs its newest checkpoint was written for (those of the last start or resume).
std::string run_status(const std::string& dir, const std::optional<std::string>& newest) {
    if (const std::string holder = DirLock::holder(dir); !holder.empty())
        return "training now (" + holder + " holds its lock)";
    if (!newest) return "not running, no checkpoint";
    const Checkpoint ckpt = read_checkpoint(*newest);
    TrainConfig trained;
    apply(parse_ini(ckpt.config_ini, *newest, train_config_options()), *newest, trained);
    std::ostringstream status;
    status << "not running, " << ckpt.epoch << " of " << trained.epochs << " epoch(s) done";
    if (ckpt.step_in_epoch) status << " and step " << ckpt.step_in_epoch << " of " << ckpt.steps_per_epoch << " of the next";
    if (ckpt.epoch >= trained.epochs) return status.str() + ": finished (--resume --epochs N trains further)";
    return status.str() + ": stopped before its end (rbm train --resume --out " + dir + " continues it)";
}

// The status, or why it cannot be told: the rest of the directory is still described.
std::string status_or_why_not(const std::string& dir, const std::optional<std::string>& newest) {
    try {
        return run_status(dir, newest);
    } catch (const Error& e) {
        return std::string("unknown (") + e.what() + ")";
    }
}

// A run directory (rbm train --out): what it holds, then its newest checkpoint and its
// metrics described as `rbm info` describes those files.
void describe_run_dir(const std::string& dir, std::ostream& out) {
    const fs::path run(dir);
    const std::optional<std::string> newest = find_newest_checkpoint(dir);
    const bool has_metrics = fs::is_regular_file(run / "metrics.h5");
    RBM_REQUIRE(newest || has_metrics, "'" << dir << "' is a directory but not an rbm run directory (it holds "
                                       "neither checkpoints/step-*.h5 nor metrics.h5)");
    out << dir << ": rbm run directory\n"
        << "  checkpoints: " << count_files(run / "checkpoints", ".h5") << (newest ? " (newest below)" : "") << "\n"
        << "  samples: " << count_files(run / "samples", ".h5") << " file(s)  filters: "
        << count_files(run / "filters", ".png") << " PNG(s)"
        << (fs::is_regular_file(run / "config.ini") ? "  config: " + (run / "config.ini").string() : "") << "\n"
        << "  status: " << status_or_why_not(dir, newest) << "\n";
    if (newest) describe_file(*newest, out);
    if (has_metrics) describe_file((run / "metrics.h5").string(), out);
}

void describe(const std::string& path, std::ostream& out) {
    if (fs::is_directory(path)) describe_run_dir(path, out);
    else describe_file(path, out);
}

}  // namespace

int run_info(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: rbm info FILE|RUN_DIR...\n"
                     "Describes rbm checkpoints, metrics, samples and features files (HDF5), and run\n"
                     "directories (rbm train --out: what they hold, their newest checkpoint and metrics).\n";
        return args.empty() ? 2 : 0;
    }
    // Every file is described that can be: one bad file among many does not hide the rest,
    // and the exit status says whether any failed.
    int status = 0;
    for (const std::string& path : args) {
        if (args.size() > 1) std::cout << "== " << path << "\n";
        try {
            describe(path, std::cout);
        } catch (const Error& e) {
            if (args.size() == 1) throw;
            std::cout.flush();
            std::cerr << "rbm: error: " << e.what() << std::endl;
            status = 1;
        }
    }
    return status;
}

}  // namespace rbm::cli
