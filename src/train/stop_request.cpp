// Stop requests (signals, --max-hours) and their agreement across ranks (see stop_request.hpp).
#include "train/stop_request.hpp"

#include <csignal>
#include <cstdint>

namespace rbm {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
    // Only the first signal counts; a second one during the checkpoint changes nothing,
    // and the checkpoint is written atomically whatever happens. Except a second Ctrl-C:
    // a person pressing it again wants the process gone now (signal and raise are
    // async-signal-safe).
    if (g_stop_signal == 0) {
        g_stop_signal = signal;
    } else if (signal == SIGINT) {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
}

}  // namespace

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGUSR1, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
}

int stop_signal_seen() { return int(g_stop_signal); }

StopReason agree_stop(const Communicator& comm, bool out_of_time) {
    const StopReason mine = g_stop_signal != 0 ? StopReason::signal
                            : out_of_time      ? StopReason::time_limit
                                               : StopReason::none;
    return StopReason(comm.allreduce_max(uint64_t(mine)));
}

}  // namespace rbm
