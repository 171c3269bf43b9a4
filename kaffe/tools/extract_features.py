"""``kaffe extract_features``: blobs of a net, batch after batch, into DBs.

Caffe's ``tools/extract_features.cpp``: build the net in the TEST phase, copy
the trained weights in, run NUM_BATCHES forward passes, and store every row
of each named blob as a ``float_data`` Datum (channels/height/width are the
blob's legacy 4-D shape) under the key ``%010d`` (the row's running index),
committing every 1000 rows. One new DB per blob.

Under ``mpiexec -n N`` worker r runs batches r, r + N, … (its data layers
read just those) and worker 0 writes every row, in batch order: the DBs are
those of a one-worker run.
"""
import logging

HELP = "run a net forward and store the rows of some of its blobs in DBs"
PARALLEL = True
DESCRIPTION = """\
Run a trained net (TEST phase) for NUM_BATCHES forward passes and write
every row of each BLOB into its own new DB as float_data Datums, keys
%010d, as Caffe's extract_features. Several blobs and DBs are given
comma-separated, in the same order."""
EPILOG = """\
example:
  kaffe extract_features lenet.caffemodel lenet_feat.prototxt ip1,ip2 \\
      ip1_lmdb,ip2_lmdb 10 lmdb CPU"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    parser.add_argument("weights", metavar="PRETRAINED_NET_PARAM",
                        help="the trained weights (.caffemodel)")
    parser.add_argument("proto", metavar="FEATURE_EXTRACTION_PROTO",
                        help="the net (prototxt) with a data layer")
    parser.add_argument("blobs", metavar="BLOB1[,BLOB2...]",
                        help="the blobs to extract, comma-separated")
    parser.add_argument("dbs", metavar="DB1[,DB2...]",
                        help="one new DB per blob, comma-separated")
    parser.add_argument("num_batches", metavar="NUM_MINI_BATCHES", type=int,
                        help="how many forward passes to run")
    parser.add_argument("db_type", metavar="DB_TYPE", nargs="?",
                        default="lmdb", help="lmdb (default) or leveldb")
    parser.add_argument("mode", metavar="CPU|GPU", nargs="?", default="CPU",
                        type=str.upper, help="CPU (default)")
    parser.add_argument("device_id", metavar="DEVICE_ID", nargs="?",
                        type=int, default=0, help="GPU id (GPU mode only)")


def extract_features(weights, proto, blob_names, db_names, num_batches,
                     db_type="lmdb"):
    """Run the extraction; returns {blob name: rows written}."""
    from ..core.errors import KaffeConfigError, KaffeShapeError
    from ..core.net import TEST, Net
    from ..data.db import BatchWriter
    from ..proto import caffe_pb2
    if isinstance(blob_names, str):
        blob_names = blob_names.split(",")
    if isinstance(db_names, str):
        db_names = db_names.split(",")
    if len(blob_names) != len(db_names):
        raise KaffeConfigError(
            "the number of blob names and dataset names must be equal",
            received=f"{len(blob_names)} blobs, {len(db_names)} DBs")
    from ..parallel.inference import ordered_map, start_sharded_inference
    comm = start_sharded_inference()
    net = Net(proto, TEST)
    net.copy_from(weights)
    for name in blob_names:
        if not net.has_blob(name):
            raise KaffeConfigError(
                f"unknown feature blob name '{name}' in the network {proto}",
                expected="one of " + ", ".join(net.blobs))
    writers = []
    try:
        if comm is None or comm.rank == 0:
            for name, db in zip(blob_names, db_names):
                log.info("Opening dataset %s", db)
                writers.append(BatchWriter(db, db_type))
        if comm is not None:            # no worker runs if a DB failed
            comm.barrier("opening the feature DBs")
        log.info("Extracting Features")
        datum = caffe_pb2.Datum()

        def extract(i):
            net.forward()
            batch = []
            for name in blob_names:
                blob = net.blobs[name]
                if blob.num_axes > 4:
                    raise KaffeShapeError(
                        f"blob '{name}' has {blob.num_axes} axes; a Datum "
                        f"holds at most 4 (num, channels, height, width)",
                        received=blob.shape)
                batch.append(((blob.channels, blob.height, blob.width),
                              blob.data.reshape(blob.num, -1).copy()))
            return batch

        def write(i, batch):
            for name, writer, (chw, rows) in zip(blob_names, writers, batch):
                datum.channels, datum.height, datum.width = chw
                for row in rows:
                    del datum.float_data[:]
                    datum.float_data.extend(row.tolist())
                    writer.put(b"%010d" % writer.count,
                               datum.SerializeToString())
                    if writer.count % 1000 == 0:
                        log.info("Extracted features of %d query images for "
                                 "feature blob %s", writer.count, name)

        ordered_map(num_batches, extract, write, comm)
        counts = {}
        for name, writer in zip(blob_names, writers):
            writer.close()
            log.info("Extracted features of %d query images for feature "
                     "blob %s", writer.count, name)
            counts[name] = writer.count
    finally:
        for writer in writers:
            if writer.db is not None:
                writer.db.close()
    log.info("Successfully extracted the features!")
    return counts


def run(args):
    from ..core.errors import KaffeConfigError
    if args.mode == "GPU":
        from .. import set_mode_gpu
        set_mode_gpu()
    elif args.mode != "CPU":
        raise KaffeConfigError("is not CPU or GPU", field="mode",
                               received=args.mode)
    log.info("Using CPU")
    extract_features(args.weights, args.proto, args.blobs, args.dbs,
                     args.num_batches, args.db_type)
    return 0
