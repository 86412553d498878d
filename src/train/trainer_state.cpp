// Where a run's state comes from and goes to: a new run (fresh, or from another run's
// checkpoint with --init-from), a resume from the checkpoint rank 0 read (on as many ranks
// bit for bit, on another count with the chains re-sliced), and the checkpoint every rank
// contributes to and rank 0 writes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <sstream>

#include "io/checkpoint.hpp"
#include "model/init.hpp"
#include "train/trainer_impl.hpp"
#include "util/check.hpp"

namespace rbm::training {
namespace {

// 64-bit FNV-1a: a cheap fingerprint for comparing replicas across ranks.
uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t hash = 1469598103934665603ull) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

}  // namespace

// Where the run stands before its first step: resumed, or new. --init-from's source is
// read and checked first, so a refused start leaves no run directory; a dry run checks
// the run directory instead of preparing it, and opens and writes nothing.
void Trainer::start(std::optional<Checkpoint> resume_from, bool dry_run) {
    std::optional<Checkpoint> init_source;
    if (!resume_from && !config_.init_from.empty()) init_source = read_init_source();
    if (dry_run) outputs_.check_writable();
    else outputs_.prepare();
    const bool resuming = resume_from.has_value();
    if (resuming) resume(*resume_from);
    else start_fresh(std::move(init_source));
    if (dry_run) return;
    // A resumed run rewrites the rows after its checkpoint; a fresh one starts an empty table.
    outputs_.open_metrics(resuming ? std::optional<uint64_t>(step_) : std::nullopt);
    outputs_.write_config();  // only now: a refused resume leaves the run's config.ini as it was
}

// A new run: fresh parameters, or (--init-from) another run's parameters and persistent
// chains (`source`, read by read_init_source); either way a fresh optimizer, step 0 and
// this run's own settings.
void Trainer::start_fresh(std::optional<Checkpoint> source) {
    ParamBuffer params = source ? source->params : initial_params(shape_, config_.seed);
    if (config_.centering || config_.vbias_from_data) {
        const std::vector<float> means = training_means();
        if (config_.vbias_from_data)  // Hinton's guide, section 8: log p / (1 - p), p kept off 0 and 1
            for (std::size_t i = 0; i < shape_.n_visible; ++i) {
                const float p = std::clamp(means[i], 1e-3f, 1.0f - 1e-3f);
                params.vbias()[i] = std::log(p / (1.0f - p));
            }
        // Hidden offsets start at 0.5, the hidden means of a model with small weights, or at
        // a centered source's moving average of its hidden means; the visible ones are always
        // this run's data's means.
        std::vector<float> hidden_offset(shape_.n_hidden, 0.5f);
        if (source && !source->hidden_offset.empty()) hidden_offset = source->hidden_offset;
        if (config_.centering) engine_->set_offsets({means, hidden_offset});
    }
    engine_->set_params(params);
    engine_->set_velocity(ParamBuffer(shape_));
    // The tutorial starts its persistent chains at h = 0; PT's tempered ones start there too.
    // A source's chains carry on where they were, re-sliced like a resume's (a source
    // without chains, CD's, gives none: they start at h = 0).
    if (keeps_chains(config_.method))
        engine_->set_chains(source ? rank_chains(source->chains_hidden.data(), source->n_chains_total())
                                   : std::vector<uint8_t>(settings_.chains * shape_.n_hidden, 0));
    // A tempered source's levels carry on too where its ladder is this run's (rank 0 has the
    // source's ladder; every rank learns its answer).
    uint8_t same_ladder = 0;
    if (source) {
        if (comm_.is_root())
            same_ladder = !settings_.betas.empty() && source->tempered_betas == settings_.betas &&
                          source->tempered_hidden.size() == settings_.betas.size() * source->chains_hidden.size();
        comm_.broadcast(&same_ladder, sizeof same_ladder);
    }
    if (config_.method == Method::pt)
        engine_->set_tempered_chains(same_ladder ? rank_tempered_chains(*source)
                                                 : std::vector<uint8_t>(settings_.betas.size() * settings_.chains *
                                                                        shape_.n_hidden, 0));
    if (source && comm_.is_root()) log_ << init_note(*source, same_ladder) << std::endl;
}

// --init-from's checkpoint, read by rank 0 and sent to every rank.
Checkpoint Trainer::read_init_source() {
    Checkpoint source;
    if (comm_.is_root()) source = read_checkpoint(config_.init_from);
    receive_checkpoint(source, CheckpointUse::init_from);
    return source;
}

// What --init-from took: the log's account of where the run starts.
std::string Trainer::init_note(const Checkpoint& source, bool tempered_taken) const {
    std::ostringstream note;
    note << "initialised from " << config_.init_from << " (step " << source.step << "): its parameters";
    if (!keeps_chains(config_.method)) return note.str() + " (CD: no persistent chains)";
    const std::size_t stored = source.n_chains_total();
    if (stored == 0) return note.str() + "; it has no persistent chains, so they start at h = 0";
    note << " and persistent chains " << chains_taken(stored);
    if (config_.method == Method::pt)
        note << (tempered_taken ? ", and its tempered levels (the same ladder)" : ", the tempered levels at h = 0");
    return note.str();
}

// Rank 0 read the checkpoint (the run's own when resuming, else --init-from's); every
// other rank receives what it needs of it.
void Trainer::receive_checkpoint(Checkpoint& ckpt, CheckpointUse use) {
    const bool resuming = use == CheckpointUse::resume;
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
        fail(resuming ? "the checkpoint being resumed" : "--init-from " + config_.init_from, " holds a ",
             ckpt.params.shape.n_visible, "x", ckpt.params.shape.n_hidden, " model, but this run's data ", config_.data,
             " has ", shape_.n_visible, " values per example and its configuration --hidden ", shape_.n_hidden);
    if (resuming) check_same_data(ckpt);  // --init-from may start on other data: fine-tuning
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
    receive_checkpoint(ckpt, CheckpointUse::resume);
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
    if (levels) engine_->set_tempered_chains(rank_tempered_chains(ckpt));
    if (old_world != uint64_t(comm_.size())) {
        // Another rank count: new shards and epoch length; keep the fraction of the epoch done.
        step_in_epoch_ = std::min<uint64_t>(data_.steps_per_epoch,
                                            step_in_epoch_ * data_.steps_per_epoch / std::max<uint64_t>(1, ckpt.steps_per_epoch));
        if (comm_.is_root()) log_ << resliced_note(ckpt.n_chains_total(), old_world) << std::endl;
    }
    restore_metric_sums(ckpt.epoch_metric_sums, old_world);
    swaps_.restore(ckpt.tempered_swaps);
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

// "(S stored, N needed; ...)": what rank_chains does with S stored chains for this run's N.
std::string Trainer::chains_taken(std::size_t stored) const {
    const std::size_t needed = settings_.chains * std::size_t(comm_.size());
    std::ostringstream note;
    note << "(" << stored << " stored, " << needed << " needed; ";
    if (stored > needed) note << "the first " << needed << " kept)";
    else if (stored < needed) note << "the " << needed - stored << " more start at h = 0)";
    else note << "all kept)";
    return note.str();
}

// This rank's rows of every tempered level, level by level, re-sliced as rank_chains does.
std::vector<uint8_t> Trainer::rank_tempered_chains(const Checkpoint& ckpt) const {
    const std::size_t stored_rows = ckpt.n_chains_total(), level_bytes = stored_rows * shape_.n_hidden;
    std::vector<uint8_t> mine;
    for (std::size_t m = 0; m < settings_.betas.size(); ++m) {
        const std::vector<uint8_t> level = rank_chains(ckpt.tempered_hidden.data() + m * level_bytes, stored_rows);
        mine.insert(mine.end(), level.begin(), level.end());
    }
    return mine;
}

// What a resume on another rank count did with the persistent chains.
std::string Trainer::resliced_note(std::size_t stored, uint64_t old_world) const {
    std::ostringstream note;
    note << "resuming a run of " << old_world << " rank(s) on " << comm_.size();
    if (!keeps_chains(config_.method)) return note.str() + " (CD: no persistent chains)";
    note << ": persistent chains re-sliced " << chains_taken(stored);
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

void Trainer::write_checkpoint() {
    TimedPhase timed(times_.checkpoints);
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
    ckpt.image_height = data_.image_height;
    ckpt.image_width = data_.image_width;
    outputs_.write_checkpoint(ckpt);
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

}  // namespace rbm::training
