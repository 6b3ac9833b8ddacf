# Example module recipe for a real cluster: source it in a job script or login shell,
# then configure with `cmake --preset default`. Module names and versions differ per
# site: set the variables below (or export them before sourcing) to what
# `module avail cuda openmpi hdf5` lists on yours.
#
# Leonardo (CINECA):  SLURMLAB_CUDA_MODULE=cuda/12.1  SLURMLAB_MPI_MODULE=openmpi/4.1.6--gcc--12.2.0
#                     SLURMLAB_HDF5_MODULE=hdf5/1.14.3--openmpi--4.1.6--gcc--12.2.0
# UPPMAX / others:    see `module spider hdf5` for a parallel (MPI) build.
: "${SLURMLAB_GCC_MODULE:=gcc/12.2.0}"
: "${SLURMLAB_CUDA_MODULE:=cuda/12.1}"
: "${SLURMLAB_MPI_MODULE:=openmpi/4.1.6}"
: "${SLURMLAB_HDF5_MODULE:=hdf5/1.14.3}"
: "${SLURMLAB_BOOST_MODULE:=boost/1.83.0}"
: "${SLURMLAB_CMAKE_MODULE:=cmake/3.27.9}"

module purge
module load "$SLURMLAB_GCC_MODULE" "$SLURMLAB_CMAKE_MODULE" "$SLURMLAB_CUDA_MODULE" \
            "$SLURMLAB_MPI_MODULE" "$SLURMLAB_HDF5_MODULE" "$SLURMLAB_BOOST_MODULE"

# cuDNN and NCCL often come as their own modules (cudnn/9.x, nccl/2.x); load them if the
# toolkit directory does not hold them, e.g.:  module load cudnn nccl
# Compute nodes: build for the GPUs you have (A100: 80, H100/H200: 90). CMake reads
# CUDAARCHS on the first configure of a build directory (-DCMAKE_CUDA_ARCHITECTURES=90 on
# the cmake line does the same and also changes an existing one).
export CUDAARCHS="${CUDAARCHS:-80;90}"
