# Spack recipe for slurmlab. Use it from a repository of your own:
#   spack repo create ~/spack-repo && mkdir -p ~/spack-repo/packages/slurmlab
#   cp env/spack/package.py ~/spack-repo/packages/slurmlab/ && spack repo add ~/spack-repo
#   spack install slurmlab +cuda cuda_arch=90 ^openmpi fabrics=ucx schedulers=slurm
# or the whole stack at once with env/spack/spack.yaml.
from spack.package import *


class Slurmlab(CMakePackage, CudaPackage):
    """Native MPI programs (C++20, CUDA) for GPU and deep-learning work on Slurm clusters:
    env-dump, logdet-histogram, fit-regression and train-classifier, with one sbatch template
    each and a library (slurmlab::cluster, ::nn, ::train, ...) for MPI programs of one's own."""

    homepage = "https://github.com/slurmlab/slurmlab"
    git = "https://github.com/slurmlab/slurmlab.git"

    license("MIT")

    version("main", branch="main")

    variant("tests", default=False, description="Build the GoogleTest suites (ctest)")
    variant("onednn", default=True, description="CPU convolutions and large Linear products on oneDNN (else im2col + OpenBLAS)")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    depends_on("cmake@3.24:", type="build")
    depends_on("ninja", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    # metrics.h5 is written by rank 0 through the MPI-enabled HDF5 API
    depends_on("hdf5+mpi")
    depends_on("boost+program_options")
    depends_on("nlohmann-json@3.9:")
    depends_on("openblas")
    depends_on("onednn", when="+onednn")
    depends_on("zlib-api")
    depends_on("libpng")
    depends_on("libjpeg-turbo")
    depends_on("cairo+png")
    depends_on("googletest", when="+tests", type="build")

    depends_on("cudnn@9:", when="+cuda")
    depends_on("nccl", when="+cuda")
    conflicts("cuda_arch=none", when="+cuda", msg="slurmlab's CUDA kernels need a cuda_arch (80 for A100, 90 for H100/H200)")

    generator("ninja")

    def cmake_args(self):
        spec = self.spec
        args = [
            self.define("SLURMLAB_CUDA", "ON" if spec.satisfies("+cuda") else "OFF"),
            self.define_from_variant("SLURMLAB_BUILD_TESTS", "tests"),
            self.define("SLURMLAB_WITH_ONEDNN", "ON" if spec.satisfies("+onednn") else "OFF"),
            self.define("SLURMLAB_WERROR", False),
        ]
        if spec.satisfies("+cuda"):
            archs = spec.variants["cuda_arch"].value
            args.append(self.define("CMAKE_CUDA_ARCHITECTURES", ";".join(archs)))
        return args

    def setup_run_environment(self, env):
        # The templates in share/slurmlab/jobs find the programs through SLURMLAB_ROOT.
        env.set("SLURMLAB_ROOT", self.prefix)
