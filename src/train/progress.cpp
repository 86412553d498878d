// Progress bar and batch-log progress lines (see progress.hpp).
#include "train/progress.hpp"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <sstream>

namespace rbm {

Progress::Progress(std::ostream& out, bool terminal, double interval_s, uint64_t total_steps,
                   uint64_t steps_per_epoch, uint64_t global_batch)
    : out_(out), terminal_(terminal), interval_s_(terminal ? 0.2 : interval_s), total_steps_(total_steps),
      steps_per_epoch_(steps_per_epoch), global_batch_(global_batch) {}

void Progress::tick(uint64_t step, uint64_t position) {
    if (start_position_ == UINT64_MAX) {
        start_position_ = position;
        start_ = last_draw_ = Clock::now();
        return;
    }
    if (interval_s_ <= 0) return;
    const auto now = Clock::now();
    if (std::chrono::duration<double>(now - last_draw_).count() < interval_s_) return;
    last_draw_ = now;
    if (terminal_) {
        out_ << "\r\033[K" << line(step, position) << std::flush;
        drawn_ = true;
    } else {
        out_ << line(step, position) << std::endl;
    }
}

void Progress::set_metrics(double pseudo_likelihood, double reconstruction_xent) {
    pseudo_likelihood_ = pseudo_likelihood;
    reconstruction_xent_ = reconstruction_xent;
    have_metrics_ = true;
}

void Progress::clear() {
    if (!drawn_) return;
    out_ << "\r\033[K" << std::flush;
    drawn_ = false;
}

std::string Progress::line(uint64_t step, uint64_t position) const {
    const double elapsed = seconds_since(start_);
    const double steps_per_s = double(position - start_position_) / std::max(elapsed, 1e-9);
    const uint64_t left = total_steps_ - std::min(position, total_steps_);
    const double eta = steps_per_s > 0 ? double(left) / steps_per_s : 0;
    const double done = total_steps_ ? double(position) / double(total_steps_) : 1.0;
    std::ostringstream o;
    char buf[160];
    if (terminal_) {
        const int width = 24, filled = int(std::lround(done * width));
        o << "[" << std::string(std::size_t(filled), '#') << std::string(std::size_t(width - filled), '.') << "] ";
    }
    std::snprintf(buf, sizeof buf, "epoch %llu/%llu  step %llu/%llu  %.0f ex/s  ETA %dm%02ds",
                  static_cast<unsigned long long>(std::min(position / steps_per_epoch_ + 1, total_steps_ / steps_per_epoch_)),
                  static_cast<unsigned long long>(total_steps_ / steps_per_epoch_),
                  static_cast<unsigned long long>(step), static_cast<unsigned long long>(step + left),
                  steps_per_s * double(global_batch_), int(eta) / 60, int(eta) % 60);
    o << buf;
    if (have_metrics_) {
        std::snprintf(buf, sizeof buf, "  PL %.2f  recon %.2f", pseudo_likelihood_, reconstruction_xent_);
        o << buf;
    }
    return o.str();
}

}  // namespace rbm
