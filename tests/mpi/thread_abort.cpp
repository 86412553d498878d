// A rank's second thread ends a 2-rank job while every main thread waits in MPI: what the
// NCCL watchdog (dist/cuda/device_reducers.cpp) does when an allreduce stalls, which only
// MPI_THREAD_MULTIPLE makes legal. Run by thread_abort.sh under mpirun.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "dist/communicator.hpp"

int main(int argc, char** argv) {
    rbm::MpiSession mpi(&argc, &argv);
    rbm::Communicator comm;
    std::printf("rank %d: MPI_THREAD_MULTIPLE %s\n", comm.rank(),
                rbm::Communicator::any_thread_may_abort() ? "granted" : "not granted");
    std::fflush(stdout);
    comm.barrier();  // both lines printed before anything ends
    if (comm.rank() == 0) {
        std::thread([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            rbm::Communicator::abort_from_any_thread(3);
        }).detach();
        comm.barrier();  // never completed: rank 1 waits for a message that never comes
    } else {
        int never = 0;
        MPI_Recv(&never, 1, MPI_INT, 0, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    std::printf("rank %d: left a collective that cannot complete\n", comm.rank());
    return 0;
}
