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
  # cuDNN and NCCL live beside the toolkit's libraries on most installs. Where they came with
  # PyTorch's pip wheels instead (nvidia-cudnn-cu13, nvidia-nccl-cu13, as on the lent GPU
  # machine: docs/gpu-machine.md), they are under site-packages/nvidia/{cudnn,nccl}/{lib,include}
  # with versioned names only (libcudnn.so.9, libnccl.so.2): looked for there second.
  set(_slurmlab_nvidia_roots "")
  find_program(SLURMLAB_PYTHON3 python3)
  if(SLURMLAB_PYTHON3)
    execute_process(COMMAND ${SLURMLAB_PYTHON3} -c "import nvidia; print(';'.join(nvidia.__path__))"
                    OUTPUT_VARIABLE _slurmlab_nvidia_roots OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  set(_slurmlab_cudnn_hints ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  set(_slurmlab_nccl_hints ${_slurmlab_cudnn_hints})
  foreach(_root IN LISTS _slurmlab_nvidia_roots)
    list(APPEND _slurmlab_cudnn_hints ${_root}/cudnn)
    list(APPEND _slurmlab_nccl_hints ${_root}/nccl)
  endforeach()
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_slurmlab_cudnn_hints} PATH_SUFFIXES lib)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_slurmlab_cudnn_hints} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_slurmlab_nccl_hints} PATH_SUFFIXES lib)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_slurmlab_nccl_hints} PATH_SUFFIXES include)
  message(STATUS "slurmlab: cuDNN ${CUDNN_LIBRARY}, NCCL ${NCCL_LIBRARY}")
endif()
