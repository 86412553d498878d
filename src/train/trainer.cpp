// The training loop, top to bottom: load this rank's shard, start or resume, then for
// every step compute the gradient, sum it across ranks, apply the same update
// everywhere; at the end of every epoch measure, checkpoint and draw. How a run starts,
// resumes and is checkpointed is in trainer_state.cpp.
#include "train/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "dist/device_binding.hpp"
#include "engine/engine_factory.hpp"
#include "io/data_rows.hpp"
#include "io/metrics_file.hpp"
#include "random/shuffle.hpp"
#include "train/stop_request.hpp"
#include "train/trainer_impl.hpp"
#include "util/check.hpp"
#include "util/clock.hpp"
#include "util/shortest_text.hpp"

namespace rbm {
namespace {

// A bar only where a person watches: Open MPI hands ranks a pseudo-terminal even when
// mpirun's own output goes to a file, so under mpirun progress is printed as lines.
bool stdout_is_terminal() { return isatty(STDOUT_FILENO) != 0 && std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr; }

// Sizes that cannot be had are refused before anything is read or allocated, by name,
// rather than as bad_alloc (or the OOM killer) minutes in: this rank's share of the data
// as floats, parameters, velocity, gradient and their copies at a checkpoint (~6 x
// params), the step's workspaces and the chains gathered at a checkpoint.
RunData load_checked(const TrainConfig& c, const Communicator& comm) {
    const SourceInfo info = probe_source(c.data);  // the header or metadata only
    const double nv = double(info.n_cols), nh = double(c.hidden), ranks = double(comm.size());
    const double rows = double(c.limit ? std::min(c.limit, info.n_rows) : info.n_rows);
    const double step_rows = double(c.batch_size + c.chains_per_rank() * c.temperature_count());
    const double copies = c.binarize.mode == Binarization::dynamic ? 2.0 : 1.0;  // pixels + this epoch's draw
    const double tempering_wt = c.method == Method::pt ? nv * nh : 0.0;  // the tempered levels' copy of W'
    const double need = 4.0 * (copies * std::ceil(rows / ranks) * nv + 6.0 * (nv * nh + nv + nh) + tempering_wt +
                               4.0 * step_rows * (nv + nh)) +
                        ranks * double(c.chains_per_rank() * c.temperature_count()) * nh;
    const double have = double(data::physical_memory());
    if (need > have)
        fail("training on ", c.data, " (", info.n_rows, " rows of ", info.n_cols, " values) with --hidden ",
             c.hidden, ", --batch-size ", c.batch_size, " and --chains ", c.chains_per_rank(), " needs about ",
             need / double(1ull << 30), " GiB per rank, more than this machine's ", have / double(1ull << 30),
             " GiB of memory (--limit, --hidden, --batch-size or --chains lower it)");
    return load_run_data(c, comm);
}

// The update rule in words, for the log: what a reader of it needs to rerun the run.
std::string describe_update(const TrainConfig& c) {
    std::ostringstream o;
    o << "lr " << c.update.learning_rate;
    if (c.lr_final) o << " falling linearly to " << *c.lr_final;
    o << ", momentum " << c.update.momentum;
    if (c.momentum_warmup) o << " after " << c.momentum_warmup << " epoch(s) at " << c.initial_momentum;
    if (c.update.weight_decay > 0) o << ", weight decay " << c.update.weight_decay;
    if (c.centering) o << ", centered (hidden offsets' rate " << c.update.offset_rate << ")";
    if (c.vbias_from_data) o << ", visible biases from the data's means";
    return o.str();
}

}  // namespace

namespace training {

Trainer::Trainer(const TrainConfig& config, const Communicator& comm, std::ostream& log)
    : config_(config), comm_(comm), log_(log), data_(load_checked(config, comm)),
      shape_{data_.n_visible, config.hidden}, outputs_(config, comm, data_) {
    create_engine();
    settings_.method = config.method;
    settings_.k = config.k;
    settings_.batch = config.batch_size;
    settings_.chains = config.chains_per_rank();
    settings_.betas = config.tempered_betas();
    swaps_ = SwapTally(settings_.betas.size());
    settings_.seed = config.seed;
    settings_.rank = uint32_t(comm.rank());
    engine_->set_training_shard(data_.shard);
}

// The engine the configuration asks for (a GPU picked by node-local rank) and the
// reducer that fits where its gradients live.
void Trainer::create_engine() {
    EngineOptions options;
    // Parallel tempering has no CUDA engine yet (validate() refused --device cuda).
    const bool cpu_only = config_.method == Method::pt;
    options.device = resolve_device_everywhere(comm_, cpu_only ? DeviceKind::cpu : config_.device);
    options.tf32 = config_.tf32;
    bool shares_gpu = false;
    if (options.device == DeviceKind::cuda) {
        const DeviceBinding binding = bind_device(comm_, log_);
        options.cuda_device = binding.device;
        shares_gpu = binding.shares_gpu;
    }
    if (comm_.is_root() && config_.device == DeviceKind::auto_select)
        log_ << "--device auto: "
             << (cpu_only ? "--method pt runs on the cpu (parallel tempering has no CUDA engine yet)"
                 : options.device == DeviceKind::cuda ? "a GPU is visible, using cuda"
                                                      : "no GPU visible (CUDA: " + why_no_cuda_device() + "), using the cpu")
             << std::endl;
    if (comm_.is_root() && config_.tf32 && options.device == DeviceKind::cpu)
        log_ << "--tf32: applies to the CUDA engine's products; the cpu computes in FP32" << std::endl;
    engine_ = make_engine(shape_, options);
    reducer_ = make_reducer(comm_, config_.comm, engine_->gradient().on_device, shares_gpu);
}

void Trainer::run(std::optional<Checkpoint> resume_from, bool dry_run) {
    start(std::move(resume_from), dry_run);
    if (comm_.is_root()) log_start();
    if (dry_run) {
        if (comm_.is_root()) log_ << dry_run_note() << std::endl;
        return;
    }
    if (comm_.is_root())
        progress_ = std::make_unique<Progress>(std::cout, stdout_is_terminal(), config_.progress_every,
                                               config_.epochs * data_.steps_per_epoch, data_.steps_per_epoch,
                                               config_.batch_size * std::size_t(comm_.size()));
    row_start_ = loop_start_ = Clock::now();
    row_start_step_ = loop_start_step_ = step_;
    while (epoch_ < config_.epochs) {
        if (redraw_shard(data_, config_, epoch_)) engine_->set_training_shard(data_.shard);
        const std::vector<uint32_t> order =
            epoch_order(data_.shard.n_rows, config_.seed, uint32_t(comm_.rank()), epoch_);
        engine_->set_epoch_order(order);
        while (step_in_epoch_ < data_.steps_per_epoch) {
            train_step(order.data() + step_in_epoch_ * config_.batch_size);
            if (progress_) progress_->tick(step_, run_position());
            const bool mid_epoch = step_in_epoch_ < data_.steps_per_epoch;
            if (mid_epoch && config_.monitor_every && step_ % config_.monitor_every == 0)
                write_metrics_row(false);
            if (mid_epoch && config_.checkpoint_every && step_ % config_.checkpoint_every == 0)
                write_checkpoint();
            if (mid_epoch) stop_if_asked();
        }
        finish_epoch();
        stop_if_asked();
    }
    if (comm_.is_root()) {
        progress_->clear();
        report_loop_times();
        if (last_replica_hash_)
            log_ << "replicas bitwise identical on " << comm_.size() << " rank(s): parameter hash " << std::hex
                 << last_replica_hash_ << std::dec << std::endl;
        outputs_.print_summary(log_);
    }
}

// The run's account of itself at its start: what a reader of the log needs to rerun it.
void Trainer::log_start() {
    log_ << "training " << shape_.n_visible << "x" << shape_.n_hidden << " RBM, " << method_name(config_.method) << "-"
         << config_.k << ", " << comm_.size() << " rank(s) x batch " << config_.batch_size << " (global batch "
         << comm_.size() * config_.batch_size << "), " << data_.train_rows << " training examples, "
         << data_.steps_per_epoch << " steps per epoch, engine " << engine_->describe() << ", allreduce "
         << reducer_->describe() << std::endl;
    log_ << "update: " << describe_update(config_) << std::endl;
    if (config_.binarize.mode == Binarization::dynamic)
        log_ << "data: training rows binarised afresh every epoch (seed " << config_.binarize.seed
             << ", draw = epoch); validation rows once" << std::endl;
    if (config_.max_hours > 0)
        log_ << "--max-hours " << config_.max_hours << ": this process stops (checkpoint, exit " << kExitStoppedEarly
             << ") once it has run that long" << std::endl;
    if (epoch_ >= config_.epochs)
        log_ << "the run already completed " << epoch_ << " epoch(s); raise --epochs to train further" << std::endl;
}

// --dry-run's last line: what the run would do, now that every check has passed.
std::string Trainer::dry_run_note() const {
    // From the run's position in this run's epochs, not from step_: a resume on another rank
    // count keeps the step count and changes the epoch's length.
    const uint64_t end = uint64_t(config_.epochs) * data_.steps_per_epoch, at = run_position();
    const uint64_t remaining = at < end ? end - at : 0;
    std::ostringstream note;
    note << "--dry-run: every check passed, nothing was written; the run would ";
    if (remaining == 0) return note.str() + "have nothing to train";
    note << "train steps " << step_ + 1 << " to " << step_ + remaining << " ("
         << remaining * config_.batch_size * uint64_t(comm_.size()) << " examples, to the end of epoch " << config_.epochs
         << ") into " << config_.out;
    return note.str();
}

// One data-parallel step: local gradient, one allreduce, the same update on every rank.
void Trainer::train_step(const uint32_t* rows) {
    StepSpec spec;
    spec.step = step_;
    spec.pl_bit = std::size_t(step_ % shape_.n_visible);
    engine_->compute_gradient(rows, settings_, spec);
    if (reducer_->sums_anything()) {  // else the engine may apply its gradient unstored
        TimedPhase timed(times_.allreduce);
        reducer_->sum_in_place(engine_->gradient());
    }
    engine_->apply_update(update_now(), 1.0f / float(comm_.size()));
    ++step_;
    ++step_in_epoch_;
    // The previous step's report is read only now, with this step already queued: a GPU
    // then never waits for the host between steps.
    check_step_report();
    engine_->start_step_report();
    report_pending_ = true;
    report_step_ = step_;
}

// Reads the step report begun last, if any. Everything that writes (metrics rows,
// checkpoints, filters, samples) calls it first, so a diverged step is still caught
// before anything of it is written.
void Trainer::check_step_report() {
    if (!report_pending_) return;
    report_pending_ = false;
    check_step_finite(engine_->finish_step_report(), report_step_);
}

// Divergence is caught at the latest while the next step runs, and before anything of
// the step is written (check_step_report). The update p += m v + lr (g / R - decay W)
// turns a non-finite gradient or velocity, or an overflow of the update itself, into a
// non-finite parameter, so one
// pass over the parameters after the update cannot miss one; it costs one read of the
// parameters (0.16 ms for 784x500 on the CPU, ~1.5% of a tutorial step; on a GPU a
// small kernel whose result the host reads a step later). The
// step's costs are checked too: overflowing pre-activations make them NaN even while
// the parameters are finite.
void Trainer::check_step_finite(const Engine::StepReport& report, uint64_t step) {
    const MetricSums& sums = report.sums;
    epoch_window_.add(sums);
    row_window_.add(sums);
    const char* cost = !std::isfinite(sums.pseudo_likelihood)     ? "pseudo-likelihood cost"
                       : !std::isfinite(sums.reconstruction_xent) ? "reconstruction cross-entropy"
                                                                  : nullptr;
    std::ostringstream what;
    if (!report.params_finite) {
        ParamBuffer p(shape_);
        engine_->get_params(p);
        std::size_t e = 0;
        while (e + 1 < p.values.size() && std::isfinite(p.values[e])) ++e;
        const std::size_t nh = shape_.n_hidden;
        what << "parameter ";
        if (e < shape_.vbias_offset()) what << "W[" << e / nh << ", " << e % nh << "]";
        else if (e < shape_.hbias_offset()) what << "vbias[" << e - shape_.vbias_offset() << "]";
        else what << "hbias[" << e - shape_.hbias_offset() << "]";
        what << " is " << p.values[e] << " after the update";
    } else if (cost) {
        what << "the " << cost << " is "
             << (cost[0] == 'p' ? sums.pseudo_likelihood : sums.reconstruction_xent) << " (on rank "
             << comm_.rank() << ")";
    } else {
        return;
    }
    const std::optional<std::string> last = find_newest_checkpoint(config_.out);
    fail("training diverged at step ", step, ": ", what.str(), "; nothing of this step was written, the "
         "last good checkpoint is ", last ? *last : std::string("(none yet)"), " (lower --lr?)");
}

// The counters move to the next epoch first, so the checkpoint resumes there. The
// epoch's pictures and samples come before its checkpoint: a run killed between them
// resumes from the previous checkpoint and writes them again (the same files), where
// the other order lost them for good.
void Trainer::finish_epoch() {
    ++epoch_;
    step_in_epoch_ = 0;
    write_metrics_row(true);
    if (config_.method == Method::pt) report_swaps();
    {
        TimedPhase timed(times_.pictures);
        if (config_.filters) outputs_.write_filters(*engine_, epoch_);
        if (config_.sample_every && epoch_ % config_.sample_every == 0)
            outputs_.write_chain_samples(*engine_, epoch_, step_);
    }
    write_checkpoint();
}

// PT: the swaps proposed and accepted between each pair of neighbouring temperatures since
// the last call, all ranks together, into the tallies of the epoch and of the metrics row.
void Trainer::collect_swaps() {
    const Engine::SwapCounts counts = engine_->take_swap_counts();
    const std::size_t pairs = settings_.betas.size();
    std::vector<double> sums(2 * pairs, 0.0);
    for (std::size_t m = 0; m < pairs && m < counts.proposed.size(); ++m) {
        sums[m] = double(counts.proposed[m]);
        sums[pairs + m] = double(counts.accepted[m]);
    }
    comm_.allreduce_sum(sums.data(), sums.size());
    swaps_.add(sums);
}

// The epoch's swap acceptance between each pair, for the log. A pair near 0 cuts the ladder
// (more temperatures, or a higher --beta-min, close the gap); near 1 everywhere, fewer would do.
void Trainer::report_swaps() {
    const std::vector<double> rates = swaps_.take_epoch_rates();
    if (!comm_.is_root()) return;
    std::ostringstream line;
    line << "tempering: swaps accepted between neighbouring inverse temperatures (1 -> " << settings_.betas.back()
         << "):";
    for (double rate : rates) {
        line << " " << std::fixed << std::setprecision(2);
        if (std::isnan(rate)) line << "-";
        else line << rate;
    }
    log_ << line.str() << std::endl;
}

double Trainer::mean_free_energy(const Dataset& rows, std::size_t n) {
    double sums[2] = {n ? engine_->free_energy_sum(rows.values.data(), n) : 0.0, double(n)};
    comm_.allreduce_sum(sums, 2);
    return sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
}

// The training data's mean of every visible unit, over all ranks' shards; under dynamic
// binarisation the pixels' means, which every epoch's draw has in expectation.
std::vector<float> Trainer::training_means() {
    const std::size_t nv = shape_.n_visible;
    const Dataset& rows = config_.binarize.mode == Binarization::dynamic ? data_.gray_shard : data_.shard;
    std::vector<double> sums(nv, 0.0);
    for (std::size_t r = 0; r < rows.n_rows; ++r)
        for (std::size_t i = 0; i < nv; ++i) sums[i] += rows.values[r * nv + i];
    comm_.allreduce_sum(sums.data(), nv);
    std::vector<float> means(nv);
    for (std::size_t i = 0; i < nv; ++i) means[i] = float(sums[i] / double(data_.train_rows));
    return means;
}

void Trainer::write_metrics_row(bool epoch_row) {
    TimedPhase timed(times_.metrics);
    check_step_report();  // the windows then hold every step's sums
    const Window& w = epoch_row ? epoch_window_ : row_window_;
    double sums[3] = {w.pseudo_likelihood, w.reconstruction_xent, w.examples};
    comm_.allreduce_sum(sums, 3);
    MetricsRow row;
    row.step = step_;
    row.epoch = epochs_done();
    row.pseudo_likelihood = sums[0] / sums[2];
    row.reconstruction_xent = sums[1] / sums[2];
    row.free_energy_train = mean_free_energy(data_.shard, data_.monitor_rows);
    row.free_energy_valid = mean_free_energy(data_.validation, data_.validation.n_rows);
    row.free_energy_gap = row.free_energy_valid - row.free_energy_train;
    row.learning_rate = update_at(run_position() - 1).learning_rate;  // the rate of the row's last step
    const double elapsed = seconds_since(row_start_);
    row.examples_per_s =
        double(step_ - row_start_step_) * double(config_.batch_size) * comm_.size() / std::max(elapsed, 1e-9);
    row.wall_s = seconds_since(training_start_);
    if (config_.method == Method::pt) {
        collect_swaps();
        row.swap_acceptance_min = swaps_.take_row_lowest();
    }
    if (!engine_->params_finite() || !std::isfinite(row.pseudo_likelihood))
        fail("training diverged at step ", step_, ": parameters or costs are not finite; the last "
             "good checkpoint is kept (lower --lr?)");
    if (progress_) {
        progress_->clear();
        progress_->set_metrics(row.pseudo_likelihood, row.reconstruction_xent);
    }
    outputs_.append_metrics(row, epoch_row);
    row_window_ = {};
    if (epoch_row) epoch_window_ = {};
    row_start_ = Clock::now();
    row_start_step_ = step_;
}

// Where the loop's time went (rank 0's clock), so that a run slowed by its checkpoints,
// metrics rows or pictures says so; and what one gradient allreduce costs beside the
// step (on a GPU the call only enqueues, so that is the host's share).
void Trainer::report_loop_times() {
    const uint64_t steps = step_ - loop_start_step_;
    const double total = std::max(seconds_since(loop_start_), 1e-9);
    if (steps == 0) return;
    const double training = std::max(0.0, total - times_.metrics - times_.checkpoints - times_.pictures);
    const auto part = [&](const char* name, double seconds) {
        return std::string(name) + " " + fixed(seconds, 2) + " s (" + fixed(100.0 * seconds / total, 1) + "%)";
    };
    log_ << "time in the loop: " << fixed(total, 2) << " s: " << part("training steps", training) << ", "
         << part("metrics rows", times_.metrics) << ", " << part("checkpoints", times_.checkpoints)
         << (config_.filters || config_.sample_every ? ", " + part("filters and samples", times_.pictures) : "")
         << std::endl;
    if (reducer_->sums_anything())  // several ranks (or a device reducer named): what the allreduce cost
        log_ << "gradient allreduce: " << fixed(times_.allreduce / double(steps) * 1e6, 1) << " us per step, "
             << fixed(100.0 * times_.allreduce / total, 2) << "% of the loop's time, " << engine_->gradient().count
             << " floats per call" << std::endl;
}

// A stop signal seen by any rank, or --max-hours run out on any rank's clock, stops every
// rank at the same step, after one checkpoint (unless this step's was just written). Past
// the last epoch there is nothing to stop: the run ends as finished (exit 0), so a job
// script does not requeue a run that has nothing left to do.
void Trainer::stop_if_asked() {
    if (epoch_ >= config_.epochs) {  // the same on every rank: no collective skipped
        if (comm_.is_root() && stop_signal_seen())
            log_ << "stop requested (signal " << stop_signal_seen() << ") after the last step: the run is complete"
                 << std::endl;
        return;
    }
    const bool out_of_time = config_.max_hours > 0 && seconds_since_process_start() >= config_.max_hours * 3600.0;
    const StopReason reason = agree_stop(comm_, out_of_time);
    if (reason == StopReason::none) return;
    if (last_checkpoint_step_ != step_) write_checkpoint();
    if (!comm_.is_root()) throw StoppedEarly{reason};
    if (progress_) progress_->clear();
    report_loop_times();
    if (reason == StopReason::signal) {
        log_ << "stop requested (signal " << stop_signal_seen() << " on rank 0; 0 means another rank's): ";
    } else {
        const double ran = seconds_since_process_start();
        log_ << "time limit reached on some rank (--max-hours " << config_.max_hours << "; rank 0 has run "
             << ran / 3600.0 << " h, " << ran << " s): ";
    }
    log_ << "checkpoint at step " << step_ << " written, exiting with " << kExitStoppedEarly
         << " (a job script requeues it; --resume continues the run)" << std::endl;
    throw StoppedEarly{reason};
}

}  // namespace training

void train(const TrainConfig& config, const Communicator& comm, std::optional<Checkpoint> resume_from,
           std::ostream& log, bool dry_run) {
    training::Trainer trainer(config, comm, log);
    trainer.run(std::move(resume_from), dry_run);
}

}  // namespace rbm
