// The Trainer behind rbm::train, shared by its two halves: the loop (trainer.cpp) and
// where a run's state comes from and goes to (trainer_state.cpp: a fresh start, a resume on
// any rank count, the checkpoint). Private to src/train.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/reducer_factory.hpp"
#include "engine/engine.hpp"
#include "io/checkpoint.hpp"
#include "train/config.hpp"
#include "train/progress.hpp"
#include "train/run_data.hpp"
#include "train/run_outputs.hpp"
#include "train/swap_tally.hpp"
#include "util/clock.hpp"

namespace rbm::training {

// Adds the time from its construction to its end to `total` (a phase of the loop).
class TimedPhase {
public:
    explicit TimedPhase(double& total) : total_(total) {}
    ~TimedPhase() { total_ += seconds_since(start_); }
    TimedPhase(const TimedPhase&) = delete;
    TimedPhase& operator=(const TimedPhase&) = delete;

private:
    double& total_;
    Clock::time_point start_ = Clock::now();
};

// Where the loop's time went on this rank's clock, for the end-of-run line: what is not a
// metrics row, a checkpoint or a picture is the training steps. On a GPU the host runs at
// most a step ahead (check_step_report waits for the previous step's report), so each
// phase is charged with its own time, give or take a step.
struct LoopTimes {
    double metrics = 0, checkpoints = 0, pictures = 0;
    double allreduce = 0;  // within the steps: the gradient allreduce call (on a GPU, enqueueing it)
};

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

// One run of `rbm train` on this rank: its data, engine, reducer and outputs, and where it
// stands. Every rank builds one; rank 0 alone writes files and the log.
class Trainer {
public:
    Trainer(const TrainConfig& config, const Communicator& comm, std::ostream& log);

    // `dry_run`: every check of a start (data, device, the checkpoint resumed or started
    // from, the run directory), then the plan in the log, writing nothing.
    void run(std::optional<Checkpoint> resume_from, bool dry_run);

private:
    // The loop (trainer.cpp).
    void create_engine();
    void train_step(const uint32_t* rows);
    void check_step_report();
    void check_step_finite(const Engine::StepReport& report, uint64_t step);
    void finish_epoch();
    void write_metrics_row(bool epoch_row);
    void collect_swaps();
    void report_swaps();
    void stop_if_asked();
    void report_loop_times();
    void log_start();
    std::string dry_run_note() const;
    double mean_free_energy(const Dataset& rows, std::size_t n);
    std::vector<float> training_means();
    // Where the run's state comes from and goes to (trainer_state.cpp).
    void start(std::optional<Checkpoint> resume_from, bool dry_run);
    void start_fresh(std::optional<Checkpoint> source);
    Checkpoint read_init_source();
    std::string init_note(const Checkpoint& source, bool tempered_taken) const;
    void resume(Checkpoint& ckpt);
    enum class CheckpointUse { resume, init_from };
    void receive_checkpoint(Checkpoint& ckpt, CheckpointUse use);
    void restore_metric_sums(std::vector<double> stored, uint64_t old_world);
    void check_same_data(const Checkpoint& ckpt) const;
    std::string resliced_note(std::size_t stored, uint64_t old_world) const;
    std::string chains_taken(std::size_t stored) const;
    std::vector<uint8_t> rank_chains(const uint8_t* level, std::size_t stored_rows) const;
    std::vector<uint8_t> rank_tempered_chains(const Checkpoint& ckpt) const;
    void write_checkpoint();
    void check_replicas_equal(const Checkpoint& ckpt);
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
    Clock::time_point training_start_ = Clock::now(), row_start_ = Clock::now();  // wall_s counts from the first
    uint64_t row_start_step_ = 0;
    uint64_t last_replica_hash_ = 0;
    uint64_t last_checkpoint_step_ = UINT64_MAX;
    std::unique_ptr<Progress> progress_;  // rank 0 only
    LoopTimes times_;                     // this process's, since loop_start_
    SwapTally swaps_;  // PT: the swaps of this epoch and metrics row so far, all ranks (collect_swaps)
    Clock::time_point loop_start_;
    uint64_t loop_start_step_ = 0;
};

}  // namespace rbm::training
