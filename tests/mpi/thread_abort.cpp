// A rank's second thread ends a 2-rank job while every main thread waits in MPI: what the
// NCCL watchdog (dist/cuda/device_reducers.cpp) does when an allreduce stalls, without
// calling MPI from that thread (rbm asks only for MPI_THREAD_FUNNELED). Run by
// thread_abort.sh under mpirun.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "dist/communicator.hpp"
#include "dist/mpi_check.hpp"

int main(int argc, char** argv) {
    rbm::MpiSession mpi(&argc, &argv);
    rbm::Communicator comm;
    int level = MPI_THREAD_SINGLE;
    RBM_MPI(MPI_Query_thread(&level));
    std::printf("rank %d: thread level %s\n", comm.rank(), level >= MPI_THREAD_FUNNELED ? "funneled or more" : "single");
    std::fflush(stdout);
    comm.barrier();  // both lines printed before anything ends
    if (comm.rank() == 0) {
        std::thread([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            rbm::Communicator::end_job_from_thread(3);
        }).detach();
        comm.barrier();  // never completed: rank 1 waits for a message that never comes
    } else {
        int never = 0;
        RBM_MPI(MPI_Recv(&never, 1, MPI_INT, 0, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    }
    std::printf("rank %d: left a collective that cannot complete\n", comm.rank());
    return 0;
}
