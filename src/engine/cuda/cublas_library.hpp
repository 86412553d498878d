// cuBLAS, loaded at its first use rather than when rbm starts. Linked directly, libcublasLt's
// initialisers cost every rbm process about half a second (`rbm info`, a CPU-only run,
// each unit test) on machines with or without a GPU, and left a stop signal sent while a
// job started to kill it before its handlers were in place. The functions keep their API
// names: cublas().cublasSgemm(...) is the library's own cublasSgemm.
#pragma once

#include <cublas_v2.h>

namespace rbm::cuda {

// The cuBLAS functions rbm calls (cublas_v2.h maps several names to their _v2 symbols;
// the members are named through the same macros, so they resolve those symbols).
struct CublasLibrary {
    decltype(&::cublasCreate) cublasCreate;
    decltype(&::cublasDestroy) cublasDestroy;
    decltype(&::cublasSetStream) cublasSetStream;
    decltype(&::cublasSetMathMode) cublasSetMathMode;
    decltype(&::cublasSetWorkspace) cublasSetWorkspace;
    decltype(&::cublasSgemm) cublasSgemm;
    decltype(&::cublasSgemv) cublasSgemv;
    decltype(&::cublasSger) cublasSger;
    decltype(&::cublasGetStatusString) cublasGetStatusString;
};

// Loads libcublas.so.<the major version rbm was built with> on the first call
// (LD_LIBRARY_PATH, then the executable's run path — a DT_RUNPATH, which comes second —,
// then the loader's cache and the system's directories); rbm::Error naming the
// library and the loader's reason if it cannot.
const CublasLibrary& cublas();

}  // namespace rbm::cuda
