"""The Spack recipe, Spack environment and Apptainer definition stay in step with the build.

Neither Spack nor Apptainer is packaged for Debian 12, so they are not run here: this checks
what can go stale without them. package.py parses and is a CMakePackage + CudaPackage whose
depends_on covers every package the top CMakeLists.txt finds; spack.yaml is valid YAML asking
for slurmlab; slurmlab.def has the sections Apptainer needs and its %runscript dispatches to
every program under src/apps.
    recipes_test.py SOURCE_DIR
"""
import ast
import pathlib
import re
import sys

import yaml

source = pathlib.Path(sys.argv[1])
failures = []

# find_package / pkg_check_modules name in CMakeLists.txt -> the Spack package that provides it
SPACK_NAME = {"MPI": "mpi", "HDF5": "hdf5", "Boost": "boost", "nlohmann_json": "nlohmann-json",
              "ZLIB": "zlib-api", "PNG": "libpng", "cairo": "cairo", "libturbojpeg": "libjpeg-turbo",
              "BLAS": "openblas", "LAPACK": "openblas", "OpenMP": None, "Threads": None, "PkgConfig": "pkgconfig",
              # find_library(VAR name): the library's file name
              "dnnl": "onednn", "lapacke": "openblas"}

cmake = "\n".join(line.split("#", 1)[0] for line in (source / "CMakeLists.txt").read_text().splitlines())
found = (re.findall(r"find_package\((\w+)", cmake) + re.findall(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET (\S+)\)", cmake)
         + re.findall(r"find_library\(\w+ (\w+)\)", cmake))

package_py = (source / "env/spack/package.py").read_text()
tree = ast.parse(package_py)
classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
if [c.name for c in classes] != ["Slurmlab"]:
    failures.append(f"package.py defines {[c.name for c in classes]}, not one class Slurmlab")
else:
    bases = {b.id for b in classes[0].bases if isinstance(b, ast.Name)}
    if bases != {"CMakePackage", "CudaPackage"}:
        failures.append(f"Slurmlab's bases are {sorted(bases)}, not CMakePackage and CudaPackage")
    methods = {n.name for n in classes[0].body if isinstance(n, ast.FunctionDef)}
    if "cmake_args" not in methods:
        failures.append("Slurmlab has no cmake_args()")
depends = set()
for node in ast.walk(tree):
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "depends_on" and node.args:
        depends.add(re.split(r"[@+~ ]", node.args[0].value)[0])
for name in found:
    if name not in SPACK_NAME:
        failures.append(f"CMakeLists.txt finds {name}, which this test does not map to a Spack package: add it here and to package.py")
    elif SPACK_NAME[name] and SPACK_NAME[name] not in depends:
        failures.append(f"CMakeLists.txt finds {name} but package.py has no depends_on('{SPACK_NAME[name]}')")
for option in re.findall(r'self\.define(?:_from_variant)?\("(\w+)"', package_py):
    if option.startswith("SLURMLAB_") and option not in cmake:
        failures.append(f"package.py sets {option}, which CMakeLists.txt does not know")

spack_yaml = yaml.safe_load((source / "env/spack/spack.yaml").read_text())
specs = spack_yaml.get("spack", {}).get("specs", [])
if not any(str(s).split()[0] == "slurmlab" for s in specs):
    failures.append(f"spack.yaml's specs {specs} do not ask for slurmlab")

definition = (source / "env/apptainer/slurmlab.def").read_text()
header = dict(re.findall(r"^(Bootstrap|From):\s*(\S+)", definition, re.M))
if header.get("Bootstrap") != "docker" or "cuda" not in header.get("From", ""):
    failures.append(f"slurmlab.def's header {header} is not a docker bootstrap from a CUDA image")
sections = set(re.findall(r"^%(\w+)", definition, re.M))
for section in ("post", "runscript", "environment", "help", "test"):
    if section not in sections:
        failures.append(f"slurmlab.def has no %{section} section")
runscript = definition.split("%runscript", 1)[-1].split("\n%", 1)[0]
for app in sorted(p.name for p in (source / "src/apps").iterdir() if p.is_dir()):
    if app not in runscript:
        failures.append(f"slurmlab.def's %runscript does not dispatch to {app}")
    if app not in package_py:
        failures.append(f"package.py's description does not name {app}")

if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"OK: package.py covers {len(found)} dependencies of CMakeLists.txt, spack.yaml asks for slurmlab, "
      f"slurmlab.def has {sorted(sections)} and runs every program")
