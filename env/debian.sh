#!/usr/bin/env bash
# Installs every Debian 12 / Ubuntu package slurmlab needs to build, test and run
# its local multi-node Slurm. Idempotent: packages already present are skipped,
# so a second run costs a dpkg query and nothing else. Run as root (or via sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git curl
  # MPI (Debian's Open MPI is built with Slurm + PMIx support)
  openmpi-bin libopenmpi-dev
  # HDF5, the Open MPI (parallel) flavour, plus h5dump and h5py for checking files
  libhdf5-openmpi-dev hdf5-tools python3-h5py python3-numpy
  # options, BLAS/LAPACK for the CPU paths, JSON output, tests
  libboost-program-options-dev libopenblas-dev liblapacke-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  # oneDNN for the CPU convolutions and large Linear products (optional: SLURMLAB_WITH_ONEDNN=AUTO uses it when present)
  libdnnl-dev
  # image data sets: gzipped MNIST (zlib), image folders (libpng, TurboJPEG); scikit-learn's digits for a test
  zlib1g-dev libpng-dev libturbojpeg0-dev python3-sklearn
  # PNG figures (cairo); python3-venv for env/python.sh (tensorboard); plots in tools/plot.py
  libcairo2-dev python3-venv python3-matplotlib
  # PyTorch (CPU) and torchvision for the `reference` tests (nn layers, data transforms) and the
  # nn and data benchmarks' peers (about 560 MB installed)
  python3-torch python3-torchvision
  # a real Slurm on this one machine (tools/local-slurm)
  slurm-wlm slurm-client munge util-linux procps
  # its accounting (tools/local-slurm up --accounting: sacct, sreport, tools/seff), and a
  # terminal multiplexer that the interactive tour types into (salloc, srun --pty)
  mariadb-server slurmdbd tmux
  # headless Chromium driven by Selenium, for the test that opens JupyterLab and TensorBoard
  # on a compute node as a browser would (tests/slurm/browser_check.py)
  chromium chromium-driver python3-selenium fonts-dejavu-core
  # Lmod, for the test that loads the installed module files (module load slurmlab); YAML for
  # the test that reads env/spack/spack.yaml
  lmod python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "env/debian.sh: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "env/debian.sh: run as root or install sudo (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
echo "env/debian.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the packages' postinst from starting system-wide slurm/munge
# daemons: tools/local-slurm runs its own, isolated ones.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
