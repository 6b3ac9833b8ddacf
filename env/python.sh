#!/usr/bin/env bash
# Creates <repo>/.venv with TensorBoard from PyPI, for the real-reader tests of our event files
# and for jobs/tensorboard.sbatch. Idempotent: an existing venv that imports tensorboard is
# left alone. Built on Debian's /usr/bin/python3 with --system-site-packages so h5py, numpy and
# matplotlib come from Debian packages (env/debian.sh) and only tensorboard comes from PyPI.
#   env/python.sh            create or check the venv
#   SLURMLAB_VENV=DIR env/python.sh    put it elsewhere (e.g. on a cluster's shared home)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SLURMLAB_VENV:-$PWD/.venv}
python=${SLURMLAB_PYTHON:-/usr/bin/python3}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import tensorboard' 2>/dev/null; then
  echo "env/python.sh: $venv has tensorboard $("$venv/bin/python" -c 'import tensorboard; print(tensorboard.__version__)')"
  exit 0
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "env/python.sh: $python lacks venv/ensurepip; install python3-venv (bash env/debian.sh does)" >&2
  exit 1
fi
echo "env/python.sh: creating $venv with tensorboard"
"$python" -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check tensorboard
"$venv/bin/python" -c 'import tensorboard; print("env/python.sh: tensorboard", tensorboard.__version__)'
