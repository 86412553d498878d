// cuBLAS loaded at first use: see cublas_library.hpp.
#include "engine/cuda/cublas_library.hpp"

#include <dlfcn.h>

#include <string>

#include "util/check.hpp"

// The symbol a cuBLAS name stands for, as text: cublasSgemm -> "cublasSgemm_v2".
#define RBM_SYMBOL_TEXT(name) RBM_SYMBOL_TEXT_OF(name)
#define RBM_SYMBOL_TEXT_OF(name) #name

namespace rbm::cuda {
namespace {

// The loader's reason for the last failure (dlerror may have none to give).
std::string loader_reason() {
    const char* reason = dlerror();
    return reason ? reason : "the loader gave no reason";
}

template <typename Function>
void resolve(void* library, const std::string& file, Function& function, const char* symbol) {
    function = reinterpret_cast<Function>(dlsym(library, symbol));
    RBM_CHECK(function != nullptr, "cuBLAS: " << file << " has no " << symbol << " (" << loader_reason() << ")");
}

CublasLibrary load() {
    const std::string file = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* library = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);  // kept for the process's life
    RBM_CHECK(library != nullptr, "cuBLAS: cannot load " << file << " (" << loader_reason()
                                      << "); the CUDA engine needs it: add its directory to LD_LIBRARY_PATH");
    CublasLibrary lib{};
    try {
#define RBM_RESOLVE(name) resolve(library, file, lib.name, RBM_SYMBOL_TEXT(name))
    RBM_RESOLVE(cublasCreate);
    RBM_RESOLVE(cublasDestroy);
    RBM_RESOLVE(cublasSetStream);
    RBM_RESOLVE(cublasSetMathMode);
    RBM_RESOLVE(cublasSetWorkspace);
    RBM_RESOLVE(cublasSgemm);
    RBM_RESOLVE(cublasSgemv);
    RBM_RESOLVE(cublasSger);
    RBM_RESOLVE(cublasGetStatusString);
#undef RBM_RESOLVE
    } catch (...) {
        dlclose(library);  // the next call loads it afresh rather than holding a second reference
        throw;
    }
    return lib;
}

}  // namespace

const CublasLibrary& cublas() {
    static const CublasLibrary library = load();  // thread-safe; a failed load is tried again next time
    return library;
}

}  // namespace rbm::cuda
