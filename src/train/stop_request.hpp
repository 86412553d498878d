// Stopping early and cleanly: SIGTERM or SIGUSR1 (Slurm's warning before a time limit
// or preemption), or Ctrl-C (SIGINT; a second one ends the process at once) asks the run
// to stop. Ranks may see the signal at different moments,
// so they agree by an allreduce at a step boundary, write one checkpoint together and
// exit with kExitCheckpointedOnSignal, which the job scripts turn into a requeue.
#pragma once

#include "dist/communicator.hpp"

namespace rbm {

// EX_TEMPFAIL from sysexits.h: "try again later", i.e. requeue me.
inline constexpr int kExitCheckpointedOnSignal = 75;

// Installs the handlers (SIGTERM, SIGUSR1, SIGINT) for the rest of the process: rbm train
// calls it first thing, before MPI starts, so a job stopped while it starts still
// checkpoints at its first step.
void install_stop_handlers();

// Which signal arrived on this rank, 0 if none. Async-signal-safe flag underneath.
int stop_signal_seen();

// Collective: true on every rank when any rank has seen a stop signal.
bool stop_agreed(const Communicator& comm);

// Thrown out of the training loop after the checkpoint is written.
struct StoppedOnSignal {
    int signal = 0;
};

}  // namespace rbm
