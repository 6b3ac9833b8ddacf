#!/bin/sh
# tools/fetch-data without the internet: a local mirror (SLURMLAB_FETCH_MIRROR=file://...) that
# serves a damaged CIFAR-10 archive and lacks the MNIST files. Both runs must fail with one clear
# line and leave nothing behind: no .partial file, no file or folder under the final name.
#   fetch_data_test.sh REPO_ROOT WORK_DIR
set -u
repo="$1" work="$2"
rm -rf "$work"
mkdir -p "$work/mirror" "$work/data"
echo "not the CIFAR-10 archive" >"$work/mirror/cifar-10-binary.tar.gz"
failures=0
check() {  # check NAME CONDITION...
  name="$1"; shift
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; failures=$((failures + 1)); fi
}

SLURMLAB_FETCH_MIRROR="file://$work/mirror/" "$repo/tools/fetch-data" cifar10 --dest "$work/data" \
  >"$work/cifar.out" 2>"$work/cifar.err"
rc=$?
cat "$work/cifar.err"
check "checksum failure exits 1" [ "$rc" -eq 1 ]
check "the message names the URL and both sums" \
  grep -q "cifar-10-binary.tar.gz has MD5 .*, not the published c32a1d4ab5d03f1284b67883e8d87530" "$work/cifar.err"
check "one line on stderr" [ "$(wc -l <"$work/cifar.err")" -eq 1 ]
check "nothing left under the data folder" [ -z "$(find "$work/data" -mindepth 2)" ]

SLURMLAB_FETCH_MIRROR="file://$work/mirror" "$repo/tools/fetch-data" mnist --dest "$work/data" \
  >"$work/mnist.out" 2>"$work/mnist.err"
rc=$?
cat "$work/mnist.err"
check "a missing file exits 1" [ "$rc" -eq 1 ]
check "the message says it could not download" grep -q "could not download file://.*/train-images-idx3-ubyte.gz" "$work/mnist.err"
check "no partial file" [ -z "$(find "$work/data" -name '*.partial')" ]
check "no file under the final name" [ ! -e "$work/data/mnist/train-images-idx3-ubyte.gz" ]

"$repo/tools/fetch-data" nonsense >/dev/null 2>&1
check "an unknown data set is a usage error (2)" [ $? -eq 2 ]
[ "$failures" -eq 0 ]
