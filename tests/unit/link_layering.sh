#!/bin/sh
# The library targets link only what they use (src/slurmlab/CMakeLists.txt): a binary built on
# cluster/ alone needs neither CUDA's libraries, HDF5 nor cairo at run time. And, so that this
# check can fail, a binary built on nn/ (checkpoints in HDF5) must show libhdf5 in the same ldd.
#   link_layering.sh CLUSTER_ONLY_BINARY HDF5_USING_BINARY
set -u
cluster_only=$1
hdf5_user=$2
heavy='libcudart|libcuda\.|libcudnn|libnccl|libcublas|libcusolver|libhdf5|libcairo'
ldd "$cluster_only" >/dev/null || { echo "FAIL: ldd cannot read $cluster_only"; exit 1; }
found=$(ldd "$cluster_only" | grep -E "$heavy")
if [ -n "$found" ]; then
  echo "FAIL: $(basename "$cluster_only") links only slurmlab::cluster but needs:"
  echo "$found"
  exit 1
fi
if ! ldd "$hdf5_user" | grep -q libhdf5; then
  echo "FAIL: ldd shows no libhdf5 for $(basename "$hdf5_user"), which writes HDF5 checkpoints: the check above proves nothing"
  exit 1
fi
echo "$(basename "$cluster_only"): $(ldd "$cluster_only" | awk '{print $1}' | tr '\n' ' ')"
echo "OK: no CUDA, HDF5 or cairo library in a cluster-only binary"
