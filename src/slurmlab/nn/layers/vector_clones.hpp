#pragma once
// Internal to the nn CPU backend: function multi-versioning for the element-wise loops. The
// build targets baseline x86-64 (SSE2, 4 floats per instruction) so that one binary runs on
// every node of a cluster; GCC additionally builds clones of the marked functions for newer
// instruction sets and the loader picks the best one the CPU has.
//
// SLURMLAB_VECTOR_CLONES: an AVX2+FMA clone (x86-64-v3, 8 floats per instruction). An AVX-512
// clone of the activation loops measured slower on the Zen 4 machine they were tuned on.
// SLURMLAB_VECTOR_CLONES_AVX512: AVX-512 (x86-64-v4) as well, for conversions that gain from
// AVX-512's wider packs (bf16 rounding).
// Loops in such functions should run over raw pointers (with __restrict where they don't alias)
// so that they vectorize; the library is built with -fno-trapping-math (src/slurmlab/CMakeLists.txt).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SLURMLAB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define SLURMLAB_VECTOR_CLONES_AVX512 __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SLURMLAB_VECTOR_CLONES
#define SLURMLAB_VECTOR_CLONES_AVX512
#endif
