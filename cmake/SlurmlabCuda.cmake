# Decides SLURMLAB_HAVE_CUDA and enables the CUDA language when it is on.
# nvcc is often installed at /usr/local/cuda without being on PATH: look there too.
include(CheckLanguage)
set(SLURMLAB_HAVE_CUDA OFF)
if(NOT SLURMLAB_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    # CMake 3.25 knows no C++20 flag for nvcc; the .cu files need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(SLURMLAB_HAVE_CUDA ON)
  elseif(SLURMLAB_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SLURMLAB_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit "
                        "or configure with the 'cpu' preset.")
  endif()
endif()

if(SLURMLAB_HAVE_CUDA)
  # cuDNN and NCCL live beside the toolkit's libraries on most installs.
  find_library(CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  message(STATUS "slurmlab: cuDNN ${CUDNN_LIBRARY}, NCCL ${NCCL_LIBRARY}")
endif()
