// The training loop, top to bottom: load this rank's shard, start or resume, then for
// every step compute the gradient, sum it across ranks, apply the same update
// everywhere; at the end of every epoch measure, checkpoint and draw.
#include "train/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "dist/device_binding.hpp"
#include "dist/reducer_factory.hpp"
#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "io/data_rows.hpp"
#include "io/metrics_file.hpp"
#include "model/init.hpp"
#include "random/shuffle.hpp"
#include "train/run_data.hpp"
#include "train/progress.hpp"
#include "train/run_outputs.hpp"
#include "train/stop_request.hpp"
#include "train/swap_tally.hpp"
#include "util/check.hpp"

namespace rbm {
namespace {

using Clock = std::chrono::steady_clock;

// 64-bit FNV-1a: a cheap fingerprint for comparing replicas across ranks.
uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t hash = 1469598103934665603ull) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

// A bar only where a person watches: Open MPI hands ranks a pseudo-terminal even when
// mpirun's own output goes to a file, so under mpirun progress is printed as lines.
bool stdout_is_terminal() { return isatty(STDOUT_FILENO) != 0 && std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr; }

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr std::size_t kMetricSums = 6;  // a rank's two windows' sums in a checkpoint

// Monitoring sums since a point (an epoch's start, the last metrics row), local to a rank.
struct Window {
    double pseudo_likelihood = 0, reconstruction_xent = 0, examples = 0;
    void add(const MetricSums& s) {
        pseudo_likelihood += s.pseudo_likelihood;
        reconstruction_xent += s.reconstruction_xent;
        examples += s.examples;
    }
};

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

class Trainer {
public:
    Trainer(const TrainConfig& config, const Communicator& comm, std::ostream& log)
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

    void run(std::optional<Checkpoint> resume_from);

private:
    void create_engine();
    void start_fresh();
    void resume(Checkpoint& ckpt);
    void receive_checkpoint(Checkpoint& ckpt);
    void restore_metric_sums(std::vector<double> stored, uint64_t old_world);
    void check_same_data(const Checkpoint& ckpt) const;
    std::string resliced_note(std::size_t stored, uint64_t old_world) const;
    std::vector<uint8_t> rank_chains(const uint8_t* level, std::size_t stored_rows) const;
    void collect_swaps();
    void report_swaps();
    void train_step(const uint32_t* rows);
    void check_step_report();
    void check_step_finite(const Engine::StepReport& report, uint64_t step);
    void finish_epoch();
    void write_metrics_row(bool epoch_row);
    void write_checkpoint();
    void stop_if_asked();
    void report_allreduce_time();
    void check_replicas_equal(const Checkpoint& ckpt);
    double mean_free_energy(const Dataset& rows, std::size_t n);
    std::vector<float> training_means();
    // Steps into the run in this run's steps per epoch: step_ itself, unless a resume changed
    // the rank count (and with it the epoch's length), when step_ counts the old steps too.
    uint64_t run_position() const { return epoch_ * data_.steps_per_epoch + step_in_epoch_; }
    UpdateRule update_at(uint64_t position) const {
        return config_.update_at(position, position / data_.steps_per_epoch,
                                 uint64_t(config_.epochs) * data_.steps_per_epoch);
    }
    UpdateRule update_now() const { return update_at(run_position()); }
    double epochs_done() const {
        return double(epoch_) + double(step_in_epoch_) / double(data_.steps_per_epoch);
    }

    const TrainConfig& config_;
    const Communicator& comm_;
    std::ostream& log_;
    RunData data_;
    RbmShape shape_;
    RunOutputs outputs_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<GradientReducer> reducer_;
    StepSettings settings_;
    uint64_t step_ = 0, epoch_ = 0, step_in_epoch_ = 0;
    Window epoch_window_, row_window_;
    bool report_pending_ = false;  // a step report begun and not yet read
    uint64_t report_step_ = 0;     // the step count at which that report began
    Clock::time_point start_ = Clock::now(), row_start_ = Clock::now();
    uint64_t row_start_step_ = 0;
    uint64_t last_replica_hash_ = 0;
    uint64_t last_checkpoint_step_ = UINT64_MAX;
    std::unique_ptr<Progress> progress_;  // rank 0 only
    double allreduce_seconds_ = 0;        // this process's time in the gradient allreduce
    SwapTally swaps_;  // PT: the swaps of this epoch and metrics row so far, all ranks (collect_swaps)
    Clock::time_point loop_start_;
    uint64_t loop_start_step_ = 0;
};

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
                                                      : "no GPU visible, using the cpu")
             << std::endl;
    engine_ = make_engine(shape_, options);
    reducer_ = make_reducer(comm_, config_.comm, engine_->gradient().on_device, shares_gpu);
}

void Trainer::run(std::optional<Checkpoint> resume_from) {
    outputs_.prepare();
    if (resume_from) resume(*resume_from);
    else start_fresh();
    outputs_.write_config();  // only now: a refused resume leaves the run's config.ini as it was
    if (comm_.is_root())
        log_ << "training " << shape_.n_visible << "x" << shape_.n_hidden << " RBM, "
             << method_name(config_.method) << "-" << config_.k << ", " << comm_.size() << " rank(s) x batch "
             << config_.batch_size << " (global batch " << comm_.size() * config_.batch_size << "), "
             << data_.train_rows << " training examples, " << data_.steps_per_epoch << " steps per epoch, engine "
             << engine_->describe() << ", allreduce " << reducer_->describe() << std::endl;
    if (comm_.is_root()) log_ << "update: " << describe_update(config_) << std::endl;
    if (comm_.is_root() && config_.binarize.mode == Binarization::dynamic)
        log_ << "data: training rows binarised afresh every epoch (seed " << config_.binarize.seed
             << ", draw = epoch); validation rows once" << std::endl;
    if (epoch_ >= config_.epochs && comm_.is_root())
        log_ << "the run already completed " << epoch_ << " epoch(s); raise --epochs to train further" << std::endl;
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
        report_allreduce_time();
        if (last_replica_hash_)
            log_ << "replicas bitwise identical on " << comm_.size() << " rank(s): parameter hash " << std::hex
                 << last_replica_hash_ << std::dec << std::endl;
        outputs_.print_summary(log_);
    }
}

void Trainer::start_fresh() {
    ParamBuffer params = initial_params(shape_, config_.seed);
    if (config_.centering || config_.vbias_from_data) {
        const std::vector<float> means = training_means();
        if (config_.vbias_from_data)  // Hinton's guide, section 8: log p / (1 - p), p kept off 0 and 1
            for (std::size_t i = 0; i < shape_.n_visible; ++i) {
                const float p = std::clamp(means[i], 1e-3f, 1.0f - 1e-3f);
                params.vbias()[i] = std::log(p / (1.0f - p));
            }
        // Hidden offsets start at 0.5, the hidden means of a model with small weights.
        if (config_.centering) engine_->set_offsets({means, std::vector<float>(shape_.n_hidden, 0.5f)});
    }
    engine_->set_params(params);
    engine_->set_velocity(ParamBuffer(shape_));
    // The tutorial starts its persistent chains at h = 0; PT's tempered ones start there too.
    if (keeps_chains(config_.method))
        engine_->set_chains(std::vector<uint8_t>(settings_.chains * shape_.n_hidden, 0));
    if (config_.method == Method::pt)
        engine_->set_tempered_chains(std::vector<uint8_t>(settings_.betas.size() * settings_.chains * shape_.n_hidden, 0));
    outputs_.open_metrics(std::nullopt);  // a fresh run: no old row is kept
}

// Rank 0 read the checkpoint; every other rank receives what it needs of it.
void Trainer::receive_checkpoint(Checkpoint& ckpt) {
    uint64_t header[7] = {ckpt.step,       ckpt.epoch,      ckpt.step_in_epoch,   ckpt.steps_per_epoch,
                          ckpt.world_size, ckpt.train_rows, ckpt.data_fingerprint};
    comm_.broadcast(header, sizeof header);
    ckpt.step = header[0];
    ckpt.epoch = header[1];
    ckpt.step_in_epoch = header[2];
    ckpt.steps_per_epoch = header[3];
    ckpt.world_size = uint32_t(header[4]);
    ckpt.train_rows = header[5];
    ckpt.data_fingerprint = header[6];
    if (!comm_.is_root()) {
        ckpt.params = ParamBuffer(shape_);
        ckpt.velocity = ParamBuffer(shape_);
    }
    if (!(ckpt.params.shape == shape_))
        fail("the checkpoint being resumed holds a ", ckpt.params.shape.n_visible, "x", ckpt.params.shape.n_hidden,
             " model, but this run's data ", config_.data, " has ", shape_.n_visible,
             " values per example and its configuration --hidden ", shape_.n_hidden);
    check_same_data(ckpt);
    comm_.broadcast(ckpt.params.values.data(), ckpt.params.values.size() * sizeof(float));
    comm_.broadcast(ckpt.velocity.values.data(), ckpt.velocity.values.size() * sizeof(float));
    uint64_t n_chain_bytes = ckpt.chains_hidden.size();
    comm_.broadcast(&n_chain_bytes, sizeof n_chain_bytes);
    ckpt.chains_hidden.resize(n_chain_bytes);
    comm_.broadcast(ckpt.chains_hidden.data(), n_chain_bytes);
    uint64_t n_tempered_bytes = ckpt.tempered_hidden.size();
    comm_.broadcast(&n_tempered_bytes, sizeof n_tempered_bytes);
    ckpt.tempered_hidden.resize(n_tempered_bytes);
    comm_.broadcast(ckpt.tempered_hidden.data(), n_tempered_bytes);
    uint64_t n_swap_tallies = ckpt.tempered_swaps.size();
    comm_.broadcast(&n_swap_tallies, sizeof n_swap_tallies);
    ckpt.tempered_swaps.resize(n_swap_tallies);
    comm_.broadcast(ckpt.tempered_swaps.data(), n_swap_tallies * sizeof(int64_t));
    uint64_t has_offsets = !ckpt.visible_offset.empty();
    comm_.broadcast(&has_offsets, sizeof has_offsets);
    if (has_offsets) {
        ckpt.visible_offset.resize(shape_.n_visible);
        ckpt.hidden_offset.resize(shape_.n_hidden);
        comm_.broadcast(ckpt.visible_offset.data(), shape_.n_visible * sizeof(float));
        comm_.broadcast(ckpt.hidden_offset.data(), shape_.n_hidden * sizeof(float));
    }
}

void Trainer::resume(Checkpoint& ckpt) {
    receive_checkpoint(ckpt);
    const bool has_offsets = !ckpt.visible_offset.empty();
    step_ = ckpt.step;
    epoch_ = ckpt.epoch;
    step_in_epoch_ = ckpt.step_in_epoch;
    const uint64_t old_world = ckpt.world_size;
    engine_->set_params(ckpt.params);
    engine_->set_velocity(ckpt.velocity);
    // --centering cannot change on resume, so offsets and configuration must agree.
    if (config_.centering != bool(has_offsets))
        fail("the newest checkpoint in ", config_.out, "/checkpoints ", has_offsets ? "holds" : "lacks",
             " the centering offsets (/centering) but its configuration says centering = ",
             config_.centering ? "true" : "false", ": not a checkpoint rbm wrote; remove it to resume from an earlier one");
    if (has_offsets) engine_->set_offsets({ckpt.visible_offset, ckpt.hidden_offset});
    // The configuration fixes the ladder; a checkpoint whose chains were tempered on another is not this run's.
    if (comm_.is_root() && ckpt.tempered_betas != settings_.betas)
        fail("the newest checkpoint in ", config_.out, "/checkpoints holds chains tempered at ",
             ckpt.tempered_betas.size(), " inverse temperature(s) (/chains/tempered_betas) that are not its "
             "configuration's ladder: not a checkpoint rbm wrote; remove it to resume from an earlier one");
    const std::size_t stored_rows = ckpt.n_chains_total();
    if (keeps_chains(config_.method)) engine_->set_chains(rank_chains(ckpt.chains_hidden.data(), stored_rows));
    const std::size_t levels = settings_.betas.size(), level_bytes = stored_rows * shape_.n_hidden;
    if (ckpt.tempered_hidden.size() != levels * level_bytes)
        fail("the newest checkpoint in ", config_.out, "/checkpoints holds ",
             level_bytes ? ckpt.tempered_hidden.size() / level_bytes : 0, " tempered level(s) of chains (/chains/"
             "tempered_hidden) but its configuration has ", levels, ": not a checkpoint rbm wrote; remove it to resume "
             "from an earlier one");
    if (levels) {
        std::vector<uint8_t> mine;
        for (std::size_t m = 0; m < levels; ++m) {
            const std::vector<uint8_t> level = rank_chains(ckpt.tempered_hidden.data() + m * level_bytes, stored_rows);
            mine.insert(mine.end(), level.begin(), level.end());
        }
        engine_->set_tempered_chains(mine);
    }
    if (old_world != uint64_t(comm_.size())) {
        // Another rank count: new shards and epoch length; keep the fraction of the epoch done.
        step_in_epoch_ = std::min<uint64_t>(data_.steps_per_epoch,
                                            step_in_epoch_ * data_.steps_per_epoch / std::max<uint64_t>(1, ckpt.steps_per_epoch));
        if (comm_.is_root()) log_ << resliced_note(ckpt.n_chains_total(), old_world) << std::endl;
    }
    restore_metric_sums(ckpt.epoch_metric_sums, old_world);
    swaps_.restore(ckpt.tempered_swaps);
    outputs_.open_metrics(step_);
    if (comm_.is_root())
        log_ << "resumed from step " << step_ << " (epoch " << epoch_ << ", step " << step_in_epoch_
             << " of " << data_.steps_per_epoch << ")" << std::endl;
}

// This rank's rows of one level of chains as stored, all ranks' in rank order [stored_rows,
// n_hidden]: rows [rank n, (rank + 1) n) of n per rank, those beyond the stored ones at h = 0.
std::vector<uint8_t> Trainer::rank_chains(const uint8_t* level, std::size_t stored_rows) const {
    const std::size_t nh = shape_.n_hidden, per_rank = settings_.chains * nh;
    std::vector<uint8_t> mine(per_rank, 0);
    const std::size_t from = std::size_t(comm_.rank()) * per_rank;
    for (std::size_t e = 0; e < per_rank && from + e < stored_rows * nh; ++e) mine[e] = level[from + e];
    return mine;
}

// What a resume on another rank count did with the persistent chains.
std::string Trainer::resliced_note(std::size_t stored, uint64_t old_world) const {
    std::ostringstream note;
    note << "resuming a run of " << old_world << " rank(s) on " << comm_.size();
    if (!keeps_chains(config_.method)) return note.str() + " (CD: no persistent chains)";
    const std::size_t needed = settings_.chains * std::size_t(comm_.size());
    note << ": persistent chains re-sliced (" << stored << " stored, " << needed << " needed; ";
    if (stored > needed) note << "the first " << needed << " kept)";
    else if (stored < needed) note << "the " << needed - stored << " more start at h = 0)";
    else note << "all kept)";
    if (config_.method == Method::pt) note << ", at each of the " << settings_.betas.size() + 1 << " temperatures";
    return note.str();
}

// The windows' sums as the checkpoint kept them, kMetricSums per rank: on as many ranks,
// each rank takes its own back; otherwise (or from a checkpoint of one row for all ranks)
// rank 0 takes their totals, so the rows' reductions count them once.
void Trainer::restore_metric_sums(std::vector<double> stored, uint64_t old_world) {
    uint64_t count = stored.size();
    comm_.broadcast(&count, sizeof count);
    stored.resize(count);
    comm_.broadcast(stored.data(), count * sizeof(double));
    if (count == 0 || count % kMetricSums != 0) return;
    double sums[kMetricSums] = {};
    if (old_world == uint64_t(comm_.size()) && count == kMetricSums * old_world) {
        std::copy_n(stored.begin() + long(kMetricSums * std::size_t(comm_.rank())), kMetricSums, sums);
    } else if (comm_.is_root()) {
        for (std::size_t e = 0; e < count; ++e) sums[e % kMetricSums] += stored[e];
    }
    epoch_window_ = {sums[0], sums[1], sums[2]};
    row_window_ = {sums[3], sums[4], sums[5]};
}

// --data may move on resume (its path is not part of the run), but its training rows must
// be the ones trained on: another file would silently train on other data, and one of
// another size on an epoch of another length. (Checkpoints from before these were kept
// carry 0s and are not checked.)
void Trainer::check_same_data(const Checkpoint& ckpt) const {
    if (ckpt.train_rows && ckpt.train_rows != data_.train_rows)
        fail("--data ", config_.data, " gives ", data_.train_rows, " training rows, but the run in ", config_.out,
             " was trained on ", ckpt.train_rows, ": resume with the data it was trained on");
    if (ckpt.data_fingerprint && ckpt.data_fingerprint != data_.fingerprint)
        fail("--data ", config_.data, ": its ", data_.train_rows, " training rows are not the ones the run in ",
             config_.out, " was trained on (same count, other values): resume with the data it was trained on");
}

// One data-parallel step: local gradient, one allreduce, the same update on every rank.
void Trainer::train_step(const uint32_t* rows) {
    StepSpec spec;
    spec.step = step_;
    spec.pl_bit = std::size_t(step_ % shape_.n_visible);
    engine_->compute_gradient(rows, settings_, spec);
    if (reducer_->sums_anything()) {  // else the engine may apply its gradient unstored
        const auto reduce_start = Clock::now();
        reducer_->sum_in_place(engine_->gradient());
        allreduce_seconds_ += seconds_since(reduce_start);
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
    if (config_.filters) outputs_.write_filters(*engine_, epoch_);
    if (config_.sample_every && epoch_ % config_.sample_every == 0)
        outputs_.write_chain_samples(*engine_, epoch_, step_);
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
    row.wall_s = seconds_since(start_);
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

void Trainer::write_checkpoint() {
    check_step_report();
    Checkpoint ckpt;
    ckpt.step = step_;
    ckpt.epoch = epoch_;
    ckpt.step_in_epoch = step_in_epoch_;
    ckpt.steps_per_epoch = data_.steps_per_epoch;
    ckpt.seed = config_.seed;
    ckpt.world_size = uint32_t(comm_.size());
    ckpt.train_rows = data_.train_rows;
    ckpt.data_fingerprint = data_.fingerprint;
    // Every rank's own metric sums, in rank order, left as they are: the rows' reductions
    // then add in the same order with or without checkpoints, and after a resume.
    const double mine[kMetricSums] = {epoch_window_.pseudo_likelihood, epoch_window_.reconstruction_xent,
                                      epoch_window_.examples,          row_window_.pseudo_likelihood,
                                      row_window_.reconstruction_xent, row_window_.examples};
    const std::vector<uint8_t> all_sums = comm_.gather(mine, sizeof mine);  // empty but on rank 0
    ckpt.epoch_metric_sums.resize(all_sums.size() / sizeof(double));
    if (!all_sums.empty()) std::memcpy(ckpt.epoch_metric_sums.data(), all_sums.data(), all_sums.size());
    const std::vector<uint8_t> chains = engine_->get_chains();
    ckpt.chains_hidden = comm_.gather(chains.data(), chains.size());
    if (config_.method == Method::pt) {
        // Gathered as [rank][level][chain]; stored as [level][rank][chain], each level laid
        // out as /chains/hidden, so a resume on another rank count re-slices every level alike.
        const std::vector<uint8_t> tempered = engine_->get_tempered_chains();
        const std::vector<uint8_t> all = comm_.gather(tempered.data(), tempered.size());  // empty but on rank 0
        if (comm_.is_root())
            ckpt.tempered_hidden = tempered_chains_by_level(all, settings_.betas.size(), std::size_t(comm_.size()));
        ckpt.tempered_betas = settings_.betas;
        collect_swaps();
        ckpt.tempered_swaps = swaps_.stored();
    }
    ckpt.params = ParamBuffer(shape_);
    ckpt.velocity = ParamBuffer(shape_);
    engine_->get_params(ckpt.params);
    engine_->get_velocity(ckpt.velocity);
    Offsets offsets = engine_->get_offsets();
    ckpt.visible_offset = std::move(offsets.visible);
    ckpt.hidden_offset = std::move(offsets.hidden);
    check_replicas_equal(ckpt);
    last_checkpoint_step_ = step_;  // on every rank: stop_if_asked decides collectively from it
    if (!comm_.is_root()) return;
    if (!engine_->params_finite())
        fail("training diverged at step ", step_, ": parameters are not finite; checkpoint not written, "
             "the last good one is kept");
    const std::size_t per_rank = chains.size() / shape_.n_hidden;
    for (int r = 0; r < comm_.size(); ++r) ckpt.chains_rank.insert(ckpt.chains_rank.end(), per_rank, r);
    ckpt.config_ini = to_ini(config_);
    outputs_.write_checkpoint(ckpt);
}

// What one gradient allreduce costs here, beside the whole step (rank 0's clock; on a
// GPU the call only enqueues, so this is the host's share).
void Trainer::report_allreduce_time() {
    const uint64_t steps = step_ - loop_start_step_;
    if (steps == 0 || !reducer_->sums_anything()) return;  // one rank: no allreduce
    const double per_step = allreduce_seconds_ / double(steps);
    const double share = allreduce_seconds_ / std::max(seconds_since(loop_start_), 1e-9);
    log_ << "gradient allreduce: " << std::fixed << std::setprecision(1) << per_step * 1e6 << " us per step, "
         << std::setprecision(2) << 100.0 * share << "% of the loop's time, " << engine_->gradient().count
         << " floats per call" << std::defaultfloat << std::endl;
}

// A stop signal seen by any rank stops every rank at the same step, after one
// checkpoint (unless this step's was just written).
void Trainer::stop_if_asked() {
    if (!stop_agreed(comm_)) return;
    if (last_checkpoint_step_ != step_) write_checkpoint();
    if (progress_) progress_->clear();
    if (comm_.is_root())
        log_ << "stop requested (signal " << stop_signal_seen() << " on rank 0; 0 means another rank's): "
             << "checkpoint at step " << step_ << " written, exiting with " << kExitCheckpointedOnSignal
             << " (a job script requeues it; --resume continues the run)" << std::endl;
    throw StoppedOnSignal{stop_signal_seen()};
}

// Every rank applied the same updates to the same parameters, so the replicas must be
// bitwise equal; a difference means a broken reduction, and the run must not go on.
void Trainer::check_replicas_equal(const Checkpoint& ckpt) {
    uint64_t hash = fnv1a(ckpt.params.values.data(), ckpt.params.values.size() * sizeof(float));
    hash = fnv1a(ckpt.velocity.values.data(), ckpt.velocity.values.size() * sizeof(float), hash);
    hash = fnv1a(ckpt.hidden_offset.data(), ckpt.hidden_offset.size() * sizeof(float), hash);
    const std::vector<uint8_t> all = comm_.gather(&hash, sizeof hash);
    if (!comm_.is_root()) return;
    for (int r = 1; r < comm_.size(); ++r) {
        uint64_t other;
        std::memcpy(&other, all.data() + std::size_t(r) * sizeof other, sizeof other);
        if (other != hash)
            fail("replicas diverged at step ", step_, ": rank ", r, "'s parameters differ from rank 0's");
    }
    last_replica_hash_ = hash;
}

}  // namespace

void train(const TrainConfig& config, const Communicator& comm, std::optional<Checkpoint> resume_from,
           std::ostream& log) {
    Trainer trainer(config, comm, log);
    trainer.run(std::move(resume_from));
}

}  // namespace rbm
