// `rbm train`: builds the run's configuration from defaults, --config and flags (or,
// with --resume, from the newest checkpoint), then hands it to the training loop.
#include <cblas.h>
#include <mpi.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "dist/communicator.hpp"
#include "dist/mpi_check.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5_input.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"
#include "util/check.hpp"

namespace rbm::cli {

// Threads per process: `requested` (--threads), or by default every core this process
// may run on when it is the only rank, and one per rank under MPI (the ranks share the
// node's cores; launchers announce the world size in the environment). The count is set
// as OpenBLAS's; the CPU engine adopts it at its first step as its own loop threads, each
// calling one-thread OpenBLAS on its block of columns (engine/cpu_threads.hpp:
// adopt_blas_threads), which at the tutorial's batch of 20 is faster than OpenBLAS's own
// threads (docs/performance.md). Where the engine does not run, OpenBLAS uses them.
void set_blas_threads(int requested) {
    int n = requested;
    if (n <= 0) {
        bool under_mpi = false;
        for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_NTASKS"})
            if (const char* value = std::getenv(name)) under_mpi = under_mpi || std::atoi(value) > 1;
        n = under_mpi ? 1 : openblas_get_num_procs();
    }
    openblas_set_num_threads(n > 0 ? n : 1);
    // Debian's OpenBLAS is built for at most 64 threads and quietly takes fewer. Said once
    // per job (by MPI rank 0, or the only process).
    int initialized = 0, rank = 0;
    RBM_MPI(MPI_Initialized(&initialized));
    if (initialized) RBM_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    const int taken = openblas_get_num_threads();
    // --threads 0 on a machine of more cores than that is said too: the rest idle unless
    // more ranks use them.
    if (taken < n && rank == 0)
        std::cerr << "rbm: warning: --threads " << requested
                  << (requested > 0 ? "" : " (every core: " + std::to_string(n) + ")")
                  << ": this OpenBLAS runs at most " << taken << " threads; using " << taken
                  << (requested > 0 ? "" : " (more MPI ranks per node would use the other cores)") << std::endl;
}

namespace {

const char* kTrainUsage =
    "usage: rbm train --data FILE [options]          start a run in --out\n"
    "       rbm train --resume --out DIR [options]   continue it from its newest checkpoint\n"
    "       rbm train --init-from RUN_DIR [options]  a new run from another's parameters and chains\n"
    "       rbm train ... --dry-run                  check it all and say what it would do; write nothing\n"
    "\n"
    "Under MPI (mpirun -np N / srun --mpi=pmix) every rank trains on its own shard with its\n"
    "own persistent chains; --batch-size is PER RANK and the global batch is N x batch-size.\n"
    "Flags override the values of a --config INI file, whose keys are the flags' names.\n";

// Keys a resumed run may change: they do not alter the mathematics of the run.
const std::set<std::string> kResumeMayChange = {
    "epochs", "data", "test-data", "out", "threads", "checkpoint-every", "keep-checkpoints",
    "monitor-every", "monitor-examples", "sample-every", "filters", "device", "comm", "tf32", "progress-every",
    "max-hours"};

// A configuration as it trains: --chains 0 means the batch size, so either spelling
// matches, and CD keeps no chains, so any count does.
std::string as_trained(TrainConfig c) {
    c.chains = c.method == Method::cd ? 0 : c.chains_per_rank();
    return to_ini(c);
}

struct Resolved {
    TrainConfig config;
    std::optional<Checkpoint> checkpoint;  // on rank 0, when resuming
    bool resuming = false;
};

// Values given again on resume must equal the stored ones, except the keys above.
void apply_on_resume(const Settings& given, const std::string& origin, TrainConfig& config) {
    for (const auto& [key, value] : given) {
        TrainConfig changed = config;
        apply({{key, value}}, origin, changed);
        if (kResumeMayChange.count(key)) config = changed;
        else if (as_trained(changed) != as_trained(config))
            fail(origin, ": --", key, " ", value, " differs from the configuration of the run being resumed; "
                 "a resumed run keeps its configuration (see ", config.out, "/config.ini): to change it, start a new "
                 "--out with --init-from ", config.out, " (its parameters and chains, your settings)");
    }
}

// A data path a resumed run takes from its stored configuration is as it was given when the
// run began, so a relative one is relative to where that was: said so, rather than a bare
// "no such file" about a path the user did not type this time.
void check_stored_path(const std::string& key, const std::string& path, const Settings& flags, const Settings& file,
                       const std::string& origin) {
    if (path.empty() || flags.count(key) || file.count(key)) return;
    const std::optional<h5in::Spec> spec = h5in::split_spec(path);
    const std::filesystem::path on_disk = spec ? spec->file : path;
    std::error_code ec;
    if (std::filesystem::exists(on_disk, ec) || ec) return;  // a folder that cannot be searched: the reader says so
    if (on_disk.is_relative())
        fail("--", key, " ", path, " (from the configuration of the run being resumed, ", origin, ") is not found from "
             "this directory (", std::filesystem::current_path(ec).string(), "): it is relative to where the run was "
             "started; resume from there, or pass --", key, " with the file's path");
    fail("--", key, " ", path, " (from the configuration of the run being resumed, ", origin, ") does not exist; pass --",
         key, " with the file's new path");
}

Resolved resolve(const Settings& flags, const Settings& file, const std::string& file_name, bool resume,
                 const Communicator& comm) {
    Resolved r;
    apply(file, file_name, r.config);
    apply(flags, "command line", r.config);
    // Rank 0 looks for a checkpoint; every rank learns what it found.
    std::string newest, stored_ini;
    if (comm.is_root()) {
        if (auto found = find_newest_checkpoint(r.config.out)) {
            newest = *found;
            if (resume) {
                r.checkpoint = read_checkpoint(newest);
                stored_ini = r.checkpoint->config_ini;
            }
        }
    }
    comm.broadcast(newest);
    comm.broadcast(stored_ini);
    if (!newest.empty() && !resume)
        fail("'", r.config.out, "' already holds a run (", newest, "); use --resume to continue it, or another --out");
    if (resume && !newest.empty()) {
        const std::string origin = "checkpoint " + newest;
        TrainConfig stored;
        apply(parse_ini(stored_ini, origin, train_config_options()), origin, stored);
        stored.max_hours = 0;  // the stopped process's limit (its job's), not the run's: given again or none
        if (stored.data.empty())
            fail(origin, ": its stored configuration (/config, attribute ini) names no data: not a checkpoint "
                 "rbm wrote; remove it to resume from an earlier one");
        stored.out = r.config.out;
        // A flag overrides the file's key, as on the run's first start: only what the
        // command line leaves to the file is the file's to match. Where the run started from
        // is its history, not a setting: a job script's --init-from, given again on every
        // restart, is neither compared nor recorded anew (the log says it is ignored).
        Settings left_to_file = file, given_flags = flags;
        for (const auto& flag : flags) left_to_file.erase(flag.first);
        const bool init_given = left_to_file.erase("init-from") + given_flags.erase("init-from") > 0;
        apply_on_resume(left_to_file, file_name, stored);
        apply_on_resume(given_flags, "command line", stored);
        if (init_given && comm.is_root())
            std::cout << "--init-from: ignored, resuming the run in " << r.config.out << " (which started from "
                      << (stored.init_from.empty() ? std::string("a fresh initialisation") : stored.init_from) << ")"
                      << std::endl;
        check_stored_path("data", stored.data, flags, file, origin);
        check_stored_path("test-data", stored.test_data, flags, file, origin);
        r.config = stored;
        r.resuming = true;
        if (!comm.is_root()) r.checkpoint = Checkpoint{};  // filled by rank 0's broadcasts
    }
    // A run directory stands for its newest checkpoint, chosen once (by rank 0) and recorded
    // as the file, so the run names the very state it started from.
    if (!r.resuming && !r.config.init_from.empty()) {
        std::string chosen, problem;  // a problem fails every rank alike
        if (comm.is_root()) {
            try {
                chosen = checkpoint_file("init-from", r.config.init_from);
            } catch (const Error& e) {
                problem = e.what();
            }
        }
        comm.broadcast(chosen);
        comm.broadcast(problem);
        if (!problem.empty()) throw Error(problem);
        r.config.init_from = chosen;
        // The checkpoint's visible biases are the start: a --vbias-init data typed with it is a
        // contradiction; one from a configuration file (every centered recipe has it) yields.
        if (r.config.vbias_from_data) {
            if (flags.count("vbias-init"))
                fail("--vbias-init data sets the visible biases that --init-from ", chosen,
                     " takes from its checkpoint: give one or the other");
            r.config.vbias_from_data = false;
            if (comm.is_root())
                std::cout << "--init-from: the visible biases are the checkpoint's (" << file_name
                          << "'s vbias-init = data does not apply)" << std::endl;
        }
    }
    return r;
}

// A flag on the command line that the run's settings leave idle (a seed with nothing
// to draw, the rate of offsets not kept) is a mistaken command, not one to run quietly.
// Files are exempt: rbm's own config.ini holds every key.
void refuse_idle_flags(const Settings& flags, const TrainConfig& c) {
    auto idle = [&](const char* key, bool applies, const std::string& what) {
        if (flags.count(key) && !applies) fail("--", key, " applies to ", what);
    };
    refuse_idle_binarize_flags(flags.count("binarize-threshold") > 0, flags.count("binarize-seed") > 0, c.binarize.mode,
                               /*dynamic_exists=*/true);
    idle("offset-rate", c.centering, "--centering true, and centering is off here");
    idle("initial-momentum", c.momentum_warmup > 0, "the --momentum-warmup epochs, and there are none here");
}

}  // namespace

int run_train(const std::vector<std::string>& args) {
    po::options_description options = train_config_options();
    po::options_description run_options("Run");
    run_options.add_options()
        ("config", po::value<std::string>(), "INI file with any of the keys below")
        ("resume", "continue the run in --out from its newest checkpoint (starts fresh if it has none)")
        ("dry-run", "check everything a start checks (options, data, device, the checkpoint resumed or "
                    "--init-from's, the run directory), say what the run would do, and exit without writing")
        ("help,h", "this help");
    po::options_description all;
    all.add(run_options).add(options);
    po::variables_map vm;
    const Settings flags = parse_flags(args, all, vm);
    if (vm.count("help")) {
        std::cout << kTrainUsage << "\n" << all << std::endl;
        return 0;
    }
    const std::string config_file = vm.count("config") ? vm["config"].as<std::string>() : "";
    const Settings file = config_file.empty() ? Settings{} : read_ini_file(config_file, options);
    Settings train_flags = flags;
    for (const char* key : {"config", "resume", "dry-run", "help"}) train_flags.erase(key);

    Communicator comm;
    check_launch_consistency(comm);
    Resolved r = resolve(train_flags, file, config_file, vm.count("resume") > 0, comm);
    validate(r.config);
    if (!r.resuming) refuse_idle_flags(train_flags, r.config);  // a run started before this check resumes as it was
    if (comm.is_root() && vm.count("resume") && !r.resuming)
        std::cout << "no checkpoint in '" << r.config.out << "/checkpoints': starting a new run" << std::endl;
    set_blas_threads(r.config.threads);
    if (comm.is_root() && std::getenv("SLURM_RESTART_COUNT"))
        std::cout << "Slurm job " << (std::getenv("SLURM_JOB_ID") ? std::getenv("SLURM_JOB_ID") : "?")
                  << ", restart " << std::getenv("SLURM_RESTART_COUNT") << std::endl;
    try {
        train(r.config, comm, std::move(r.checkpoint), std::cout, vm.count("dry-run") > 0);
    } catch (const StoppedEarly&) {
        return kExitStoppedEarly;
    }
    return 0;
}

}  // namespace rbm::cli
