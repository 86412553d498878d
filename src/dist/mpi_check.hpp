// Checks MPI calls: MPI_COMM_WORLD returns error codes (MpiSession sets
// MPI_ERRORS_RETURN), and a failure throws rbm::Error naming the call, MPI's own
// description of the error, and file:line.
#pragma once

#include <mpi.h>

#include <string>

#include "util/check.hpp"

#define RBM_MPI(call)                                                                  \
    do {                                                                               \
        int rbm_mpi_rc_ = (call);                                                      \
        if (rbm_mpi_rc_ != MPI_SUCCESS) {                                              \
            char rbm_mpi_text_[MPI_MAX_ERROR_STRING];                                  \
            int rbm_mpi_len_ = 0;                                                      \
            MPI_Error_string(rbm_mpi_rc_, rbm_mpi_text_, &rbm_mpi_len_);               \
            RBM_CHECK(false, "MPI: " #call " failed: " << std::string(rbm_mpi_text_, rbm_mpi_len_)); \
        }                                                                              \
    } while (0)
