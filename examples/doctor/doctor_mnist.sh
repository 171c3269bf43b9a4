#!/usr/bin/env bash
# kaffe doctor on the real MNIST: Caffe's LeNet recipe broken (no input
# scale), then as it should be.
#
#   examples/doctor/doctor_mnist.sh [MNIST_DIR] [extra kaffe doctor flags]
#
# MNIST_DIR holds the four IDX files (raw or .gz); it defaults to the copy
# in ../shared/data/mnist next to the repository. The LMDBs are made as
# examples/mnist/train_lenet.sh makes them.
set -euo pipefail
cd "$(dirname "$0")/../.."          # the prototxts' paths are relative to here
MNIST=${1:-../shared/data/mnist}
shift || true
for split in train t10k; do
  db=examples/mnist/mnist_${split/t10k/test}_lmdb
  if [ ! -d "$db" ]; then
    images=$(ls "$MNIST"/${split}-images-idx3-ubyte* | head -n 1)
    labels=$(ls "$MNIST"/${split}-labels-idx1-ubyte* | head -n 1)
    kaffe convert_mnist_data "$images" "$labels" "$db" --backend=lmdb
  fi
done
echo "== broken: LeNet without transform_param scale"
kaffe doctor --solver examples/doctor/lenet_noscale_solver.prototxt "$@"
echo "== fixed: Caffe's LeNet recipe"
kaffe doctor --solver examples/mnist/lenet_solver.prototxt "$@"
