#!/usr/bin/env python3
"""tools/check-layering on the real tree (must pass) and on small made-up trees (each kind of
offence must be caught, so that the check can fail)."""
import pathlib
import subprocess
import sys
import tempfile

script = pathlib.Path(sys.argv[1])
repository = pathlib.Path(sys.argv[2])


def run(root):
    result = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def tree(files):
    root = pathlib.Path(tempfile.mkdtemp(prefix="layering-"))
    for name, text in files.items():
        path = root / "src" / "slurmlab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


failures = []


def expect(files, code, phrase):
    status, output = run(tree(files))
    if status != code or phrase not in output:
        failures.append(f"expected exit {code} and '{phrase}', got {status}:\n{output}")


status, output = run(repository)
if status != 0:
    failures.append("the repository's own includes break the layering:\n" + output)

ok = {"core/errors.hpp": "", "io/file.hpp": '#include "slurmlab/core/errors.hpp"\n',
      "cluster/mpi.hpp": '#include "slurmlab/io/file.hpp"\n'}
expect(ok, 0, "goes one way")
expect({**ok, "io/bad.cpp": '#include "slurmlab/cluster/mpi.hpp"\n'}, 1, "io includes cluster")
expect({**ok, "core/bad.cpp": '  #  include "slurmlab/io/file.hpp"\n'}, 1, "core includes io")
expect({**ok, "linalg/x.cpp": '#include "slurmlab/cluster/mpi.hpp"\n'}, 1, "linalg includes cluster")
expect({"nn/tensor/tensor.hpp": "", "nn/cuda/context.hpp": '#include "slurmlab/nn/layers/layer.hpp"\n',
        "nn/layers/layer.hpp": '#include "slurmlab/nn/tensor/tensor.hpp"\n'}, 1, "nn/cuda includes nn/layers")
expect({"io/a.hpp": '#include "slurmlab/io/b.hpp"\n', "io/b.hpp": '#include "slurmlab/io/a.hpp"\n'}, 1,
       "include cycle: io/a.hpp -> io/b.hpp -> io/a.hpp")
expect({"io/a.hpp": '#include "slurmlab/io/gone.hpp"\n'}, 1, "does not exist")
expect({"widgets/a.hpp": ""}, 1, "module 'widgets' is not in the layering")

for failure in failures:
    print("FAIL:", failure)
print(f"check_layering: {8 + 1 - len(failures)} of 9 cases as expected")
sys.exit(1 if failures else 0)
