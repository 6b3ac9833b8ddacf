#!/usr/bin/env bash
# Creates <repo>/.venv with TensorBoard and JupyterLab from PyPI: TensorBoard for the real-reader
# tests of our event files and jobs/tensorboard.sbatch, JupyterLab for jobs/jupyter.sbatch and
# tools/notebook. Idempotent: a venv that imports both is left alone, a missing one is added.
# Built on Debian's /usr/bin/python3 with --system-site-packages so h5py, numpy and matplotlib
# come from Debian packages (env/debian.sh) and only these two come from PyPI.
#   env/python.sh            create or check the venv
#   SLURMLAB_VENV=DIR env/python.sh    put it elsewhere (e.g. on a cluster's shared home)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SLURMLAB_VENV:-$PWD/.venv}
python=${SLURMLAB_PYTHON:-/usr/bin/python3}

has() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $1" 2>/dev/null; }
if has tensorboard && has jupyterlab; then
  echo "env/python.sh: $venv has tensorboard $("$venv/bin/python" -c 'import tensorboard; print(tensorboard.__version__)') and jupyterlab $("$venv/bin/python" -c 'import jupyterlab; print(jupyterlab.__version__)')"
  exit 0
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "env/python.sh: $python lacks venv/ensurepip; install python3-venv (bash env/debian.sh does)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "env/python.sh: creating $venv"
  "$python" -m venv --system-site-packages "$venv"
fi
has tensorboard || { echo "env/python.sh: installing tensorboard into $venv"; "$venv/bin/pip" install --quiet --disable-pip-version-check tensorboard; }
"$venv/bin/python" -c 'import tensorboard; print("env/python.sh: tensorboard", tensorboard.__version__)'
# JupyterLab second: without it only jobs/jupyter.sbatch and its test are lost (the test skips).
if ! has jupyterlab; then
  echo "env/python.sh: installing jupyterlab into $venv"
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check jupyterlab; then
    echo "env/python.sh: jupyterlab did not install (no PyPI?); jobs/jupyter.sbatch needs it: rerun env/python.sh when PyPI is reachable, or load your site's Jupyter module" >&2
    exit 1
  fi
fi
"$venv/bin/python" -c 'import jupyterlab; print("env/python.sh: jupyterlab", jupyterlab.__version__)'
