#!/usr/bin/env bash
# Train LeNet on MNIST as a Caffe user would: convert the IDX files into
# LMDBs, then run the solver from the command line.
#
#   examples/mnist/train_lenet.sh [MNIST_DIR] [extra kaffe train flags]
#
# MNIST_DIR holds the four IDX files (raw or .gz); it defaults to the copy
# in ../shared/data/mnist next to the repository.
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
kaffe train --solver=examples/mnist/lenet_solver.prototxt "$@"
