#!/usr/bin/env bash
# tools/gpu-env on a small archive laid out as tools/gpu-bundle writes it (the real one is
# Debian's packages, downloaded; tests never download): it unpacks into its own folder, keeps
# the system's copy of a library the system has and the bundled one of a library it lacks,
# points pkg-config files and fontconfig at the folder, exports the build's variables and
# writes the CMake cache; bad archives and folders are refused in one sentence. Also
# tools/gpu-check's refusal of an unknown --part.
# usage: gpu_env_test.sh REPO WORK
set -u
repo=$1 work=$2
failures=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi; }

rm -rf "$work" && mkdir -p "$work/root"
root=$work/root lib=usr/lib/x86_64-linux-gnu
mkdir -p "$root/$lib/pkgconfig" "$root/usr/share/slurmlab-deps" "$root/usr/bin" "$root/etc/fonts"
# A soname every Linux system has (the C library's loader list names it) and one none has.
ldconfig_bin=$(command -v ldconfig || echo /sbin/ldconfig)
system_lib=$("$ldconfig_bin" -p | awk '/libc\.so\.6 /{print $1; exit}')
[ -n "$system_lib" ] || { echo "FAILED: no loader cache ($ldconfig_bin -p) to find libc.so.6 in"; exit 1; }
touch "$root/$lib/$system_lib" "$root/$lib/libslurmlab-absent.so.7"
printf '%s\n' "$lib/$system_lib" "$lib/libslurmlab-absent.so.7" >"$root/usr/share/slurmlab-deps/optional-libs.txt"
echo "libexample 1.0" >"$root/usr/share/slurmlab-deps/packages.txt"
printf 'prefix=/usr\nlibdir=/usr/lib/x86_64-linux-gnu\nName: example\nRequires.private: x11\nLibs: -L${libdir} -lexample\n' \
  >"$root/$lib/pkgconfig/example.pc"
printf '<fontconfig>\n\t<dir>/usr/share/fonts</dir>\n\t<cachedir>/var/cache/fontconfig</cachedir>\n</fontconfig>\n' \
  >"$root/etc/fonts/fonts.conf"
tar -C "$root" -cJf "$work/deps.tar.xz" .

# Sourced as tools/gpu-check sources it: under set -euo pipefail.
out=$(bash -c 'set -euo pipefail; source "$1/tools/gpu-env" "$2" "$3" 2>&1 && env' _ "$repo" "$work/deps.tar.xz" "$work/unpacked")
status=$?
u=$work/unpacked
check "sourcing succeeds" '[ "$status" -eq 0 ]'
check "the system's copy of $system_lib wins" '[ ! -e "$u/$lib/$system_lib" ]'
check "a library the system lacks is kept" '[ -e "$u/$lib/libslurmlab-absent.so.7" ]'
check "pkg-config files point into the folder" 'grep -q "^prefix=$u/usr$" "$u/$lib/pkgconfig/example.pc" && grep -q "^libdir=$u/usr/lib" "$u/$lib/pkgconfig/example.pc"'
check "private requirements that are not carried are dropped" '! grep -q Requires.private "$u/$lib/pkgconfig/example.pc"'
check "Open MPI is relocated" 'echo "$out" | grep -q "^OPAL_PREFIX=$u/usr$"'
check "the libraries are on LD_LIBRARY_PATH" 'echo "$out" | grep -q "^LD_LIBRARY_PATH=$u/$lib:"'
check "PATH starts with the folder's bin" 'echo "$out" | grep -q "^PATH=$u/usr/bin:"'
check "the CMake cache names the relocated MPI and HDF5" 'grep -q "MPI_CXX_COMPILER \"$u/usr/bin/mpicxx\"" "$u/slurmlab-deps.cmake" && grep -q "HDF5_C_LIBRARY_hdf5 \"$u/$lib/hdf5/openmpi/libhdf5.so\"" "$u/slurmlab-deps.cmake"'
check "the cache is exported" 'echo "$out" | grep -q "^SLURMLAB_DEPS_CACHE=$u/slurmlab-deps.cmake$"'
if [ ! -f /etc/fonts/fonts.conf ]; then
  check "fontconfig reads the folder's fonts" 'grep -q "<dir>$u/usr/share/fonts</dir>" "$u/etc/fonts/fonts.conf"'
fi
# Sourcing again (a second gpu-check call) changes nothing twice.
cp "$u/$lib/pkgconfig/example.pc" "$work/example.pc.first"
bash -c 'source "$1/tools/gpu-env" "$2" "$3"' _ "$repo" "$work/deps.tar.xz" "$u" 2>/dev/null
check "a second sourcing leaves the pkg-config file as it was" 'cmp -s "$work/example.pc.first" "$u/$lib/pkgconfig/example.pc" && [ "$(grep -c "$u" "$u/$lib/pkgconfig/example.pc")" -eq 2 ]'

missing=$(bash -c 'source "$1/tools/gpu-env" "$2"; echo "status $?"' _ "$repo" "$work/none.tar.xz" 2>&1)
check "a missing archive is one sentence and status 2" 'echo "$missing" | grep -q "no archive .* make one with tools/gpu-bundle" && echo "$missing" | grep -q "status 2"'
root_dir=$(bash -c 'source "$1/tools/gpu-env" "$2" /usr; echo "status $?"' _ "$repo" "$work/deps.tar.xz" 2>&1)
check "unpacking into /usr is refused" 'echo "$root_dir" | grep -q "refusing to unpack into ./usr." && echo "$root_dir" | grep -q "status 2"'
slash=$(bash -c 'source "$1/tools/gpu-env" "$2" /tmp/..; echo "status $?"' _ "$repo" "$work/deps.tar.xz" 2>&1)
check "/tmp/.. is / and refused" 'echo "$slash" | grep -q "refusing to unpack into ./." && echo "$slash" | grep -q "status 2"'
mkdir -p "$work/busy" && touch "$work/busy/mine.txt"
busy=$(bash -c 'source "$1/tools/gpu-env" "$2" "$3"; echo "status $?"' _ "$repo" "$work/deps.tar.xz" "$work/busy" 2>&1)
check "a folder holding other files is refused" 'echo "$busy" | grep -q "holds other files" && [ -e "$work/busy/mine.txt" ] && [ ! -e "$work/busy/usr" ]'
# Another archive in the same folder: unpacked afresh, the old files gone.
touch "$root/usr/share/slurmlab-deps/newer.txt"
rm "$root/$lib/libslurmlab-absent.so.7" && sed -i '/absent/d' "$root/usr/share/slurmlab-deps/optional-libs.txt"
tar -C "$root" -cJf "$work/deps2.tar.xz" .
bash -c 'source "$1/tools/gpu-env" "$2" "$3"' _ "$repo" "$work/deps2.tar.xz" "$u" 2>/dev/null
check "a newer archive replaces the old unpack" '[ -e "$u/usr/share/slurmlab-deps/newer.txt" ] && [ ! -e "$u/$lib/libslurmlab-absent.so.7" ]'
part=$("$repo/tools/gpu-check" --part everything 2>&1)
part_status=$?
check "gpu-check refuses an unknown --part" '[ "$part_status" -eq 2 ] && echo "$part" | grep -q "is not tests, bench or all"'

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
