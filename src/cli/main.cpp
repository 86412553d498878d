// rbm's entry point: dispatches to a subcommand and turns any failure into one clear
// line and a non-zero exit. Under MPI, a failure on any rank ends the whole job.
#include <mpi.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "dist/communicator.hpp"
#include "engine/engine_factory.hpp"
#include "train/stop_request.hpp"
#include "util/check.hpp"

namespace {

const char* kUsage =
    "usage: rbm <command> [options]\n"
    "\n"
    "Trains Bernoulli Restricted Boltzmann Machines with CD-k, PCD-k or parallel tempering,\n"
    "data-parallel over MPI ranks (mpirun -np N rbm train ..., or srun --mpi=pmix), and\n"
    "writes HDF5 files.\n"
    "\n"
    "commands:\n"
    "  train     train (or --resume) a run into a run directory\n"
    "  sample    draw Gibbs samples from a checkpoint into an HDF5 tensor and a PNG\n"
    "  eval      log-likelihood (AIS, RAISE, exact), pseudo-likelihood and more of a checkpoint\n"
    "  transform hidden-unit features p(h | v) of a data set (and its labels) into HDF5\n"
    "  info      describe a checkpoint, metrics, samples or features file\n"
    "\n"
    "rbm <command> --help describes each command's options; rbm --version prints the version.\n";

// Ends the job after an error: alone, a plain exit; with other ranks, MPI_Abort, so
// that no rank is left waiting in a collective.
int fail_job(const std::string& message) {
    int initialized = 0, finalized = 0, rank = 0, size = 1;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    const bool live = initialized && !finalized;
    if (live) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    // One write: std::cerr is unbuffered, and mpirun interleaves the pieces of separate
    // writes with other ranks' output (seen: "rbm (rank 1)" and ": error: ..." split by
    // rank 0's lines).
    std::string line = "rbm";
    if (size > 1) line += " (rank " + std::to_string(rank) + ")";
    line += ": error: " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    if (live && size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

// What a command printed must have reached stdout (`rbm eval --json > result.json` on
// a full disk would otherwise leave an empty file behind an exit code of 0).
int check_stdout() {
    std::cout.flush();
    if (std::cout.good() && std::fflush(stdout) == 0 && !std::ferror(stdout)) return 0;
    return fail_job(std::string("cannot write standard output: ") + std::strerror(errno ? errno : EIO));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << kUsage;
        return 2;
    }
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    // Declared outside the try, so MPI is still up when an error must abort the job.
    std::unique_ptr<rbm::MpiSession> mpi;
    try {
        int code = 2;
        if (command == "--version" || command == "version") {
            std::cout << "rbm " << RBM_VERSION << " (CUDA engine: "
                      << (rbm::cuda_built() ? "built, " + std::to_string(rbm::cuda_device_count()) + " GPU(s) visible" +
                                                  (rbm::cuda_device_count() ? "" : " (CUDA: " + rbm::why_no_cuda_device() + ")")
                                            : std::string("not built"))
                      << ")" << std::endl;
            code = 0;
        } else if (command == "--help" || command == "-h" || command == "help") {
            std::cout << kUsage;
            code = 0;
        } else if (command == "train" || command == "eval" || command == "sample" || command == "transform") {
            // A stop signal while MPI starts or the checkpoint is read (a job preempted as
            // it starts) is then seen at the first step rather than killing the process.
            if (command == "train") rbm::install_stop_handlers();
            mpi = std::make_unique<rbm::MpiSession>(&argc, &argv);
            code = command == "train"    ? rbm::cli::run_train(args)
                   : command == "eval"   ? rbm::cli::run_eval(args)
                   : command == "sample" ? rbm::cli::run_sample(args)
                                         : rbm::cli::run_transform(args);
        } else if (command == "info") {
            code = rbm::cli::run_info(args);
        } else {
            std::cerr << "rbm: error: unknown command '" << command << "'\n\n" << kUsage;
        }
        return code != 0 ? code : check_stdout();
    } catch (const rbm::Error& e) {
        return fail_job(e.what());
    } catch (const std::exception& e) {
        return fail_job(std::string("unexpected failure: ") + e.what());
    }
}
