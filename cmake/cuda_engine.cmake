# The CUDA engine, its kernels, the GPU's AIS chains and the NCCL reducer, built into rbm_core whenever
# nvcc is found (RBM_WITH_CUDA=OFF builds without). CUDA 13 here ships NCCL inside the
# toolkit (include/nccl.h, lib/libnccl.so) with no CMake package, so NCCL is an
# imported target found beside the toolkit's own directories.
if(NOT RBM_WITH_CUDA)
  return()
endif()
# Which nvcc, unless CMAKE_CUDA_COMPILER or CUDACXX says: the one on PATH when it sits in
# its toolkit (its ../include has cuda_runtime.h), else the toolkit's own where CUDA
# installs it. A plain shell's PATH lacks /usr/local/cuda/bin, and these machines have a
# wrapper script /usr/local/bin/nvcc from which CMake cannot find the toolkit: both
# built without the CUDA engine although nvcc was there.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_program(RBM_NVCC_ON_PATH nvcc)
  set(RBM_NVCC_IN_TOOLKIT FALSE)
  if(RBM_NVCC_ON_PATH)
    get_filename_component(RBM_NVCC_DIR "${RBM_NVCC_ON_PATH}" REALPATH)
    get_filename_component(RBM_NVCC_DIR "${RBM_NVCC_DIR}" DIRECTORY)
    if(EXISTS "${RBM_NVCC_DIR}/../include/cuda_runtime.h")
      set(RBM_NVCC_IN_TOOLKIT TRUE)
    endif()
  endif()
  # Through CUDACXX, so that check_language still tries it: an nvcc that cannot compile
  # here (a host compiler too new for it) means no CUDA engine, not a failed configure.
  if(NOT RBM_NVCC_IN_TOOLKIT AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
  endif()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "rbm: nvcc not found, building without the CUDA engine")
  return()
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)  # sm_90 code and compute_90 PTX: H100 / H200
endif()
enable_language(CUDA)
# Debian 12's CMake 3.25.1 FindCUDAToolkit marks CUDA::nvToolsExt deprecated without
# checking that it exists, and CUDA 13 ships no nvToolsExt: with this project's minimum
# of 3.25 the configure fails ("set_property could not find TARGET CUDA::nvToolsExt").
# The module takes that branch only for projects requiring 3.25 or newer.
set(RBM_MINIMUM_REQUIRED ${CMAKE_MINIMUM_REQUIRED_VERSION})
set(CMAKE_MINIMUM_REQUIRED_VERSION 3.24)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_MINIMUM_REQUIRED_VERSION ${RBM_MINIMUM_REQUIRED})

find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} REQUIRED)
find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib REQUIRED)
add_library(rbm_nccl UNKNOWN IMPORTED)
set_target_properties(rbm_nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                                          INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})

file(GLOB RBM_CUDA_SOURCES CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/src/engine/cuda/*.cpp ${PROJECT_SOURCE_DIR}/src/dist/cuda/*.cpp
     ${PROJECT_SOURCE_DIR}/src/eval/cuda/*.cpp
     ${PROJECT_SOURCE_DIR}/kernels/*.cu)
target_sources(rbm_core PRIVATE ${RBM_CUDA_SOURCES})
# rbm_core was created before CUDA was enabled, so its CUDA properties are set here.
# CMake 3.25 knows no C++20 flag for nvcc: the kernels are C++17.
set_target_properties(rbm_core PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
                                          CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
target_include_directories(rbm_core PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_definitions(rbm_core PUBLIC RBM_HAVE_CUDA=1)
# cuBLAS is not linked: src/engine/cuda/cublas_library loads it at first use (linked, its
# initialisers cost every rbm process half a second, GPU or not). Its headers come with cudart's.
target_link_libraries(rbm_core PUBLIC CUDA::cudart rbm_nccl ${CMAKE_DL_LIBS})
set(RBM_HAVE_CUDA ON)
message(STATUS "rbm: CUDA engine enabled (${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, NCCL ${NCCL_LIBRARY})")
