// Stopping early and cleanly: SIGTERM or SIGUSR1 (Slurm's warning before a time limit
// or preemption), or Ctrl-C (SIGINT; a second one ends the process at once) asks the run
// to stop, as does --max-hours when the time is up. Ranks may see the signal at different moments,
// so they agree by an allreduce at a step boundary, write one checkpoint together and
// exit with kExitStoppedEarly, which the job scripts turn into a requeue.
#pragma once

#include "dist/communicator.hpp"

namespace rbm {

// EX_TEMPFAIL from sysexits.h: "try again later", i.e. requeue me.
inline constexpr int kExitStoppedEarly = 75;

// Installs the handlers (SIGTERM, SIGUSR1, SIGINT) for the rest of the process: rbm train
// calls it first thing, before MPI starts, so a job stopped while it starts still
// checkpoints at its first step.
void install_stop_handlers();

// Which signal arrived on this rank, 0 if none. Async-signal-safe flag underneath.
int stop_signal_seen();

// Why the run stops at this step boundary: a stop signal, or a rank past --max-hours.
// Ordered: agree_stop takes the maximum over ranks, so a signal anywhere wins.
enum class StopReason { none, time_limit, signal };

// Collective: the same on every rank: a signal when any rank has seen one, else the time
// limit when any rank says it is `out_of_time`.
StopReason agree_stop(const Communicator& comm, bool out_of_time);

// Thrown out of the training loop after the checkpoint is written (on a signal or at
// --max-hours); rbm train then exits with kExitStoppedEarly.
struct StoppedEarly {
    StopReason reason = StopReason::none;
};

}  // namespace rbm
