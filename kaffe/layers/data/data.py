"""Data: batches of Datums read from an LMDB or LevelDB, in key order."""
import logging

from ...core.errors import KaffeError
from ...core.registry import register_layer
from ...data.datum import parse_datum
from ...data.db import backend_name, open_db
from ...parallel.context import data_shard, next_kept
from .base_data import BasePrefetchingDataLayer, located

log = logging.getLogger("kaffe")


@register_layer("Data")
class DataLayer(BasePrefetchingDataLayer):
    """Reads serialized Datums from a database, transforms them, batches them.

    Reads data_param: source (the DB directory), batch_size, backend
    (LEVELDB by default, as in Caffe's proto — set ``backend: LMDB`` for an
    LMDB), prefetch (batches read ahead, 4); and transform_param (scale,
    mean_file / mean_value, crop_size, mirror, force_color / force_gray for
    encoded Datums). The deprecated data_param scale/mean_file/crop_size/
    mirror of old V1 nets were moved into transform_param when the net was
    read. As in Caffe 1.0, ``rand_skip`` and ``force_encoded_color`` are
    accepted and ignored (their code left Caffe with the DataReader).

    Records are read in key order; after the last one the cursor goes back
    to the first ("Restarting data prefetching from start."). Every batch is
    shaped by its first Datum. With several solvers (``mpiexec -n N kaffe
    train``, or ``caffe.set_solver_count``) a TRAIN-phase layer reads every
    N-th record, from record ``solver_rank`` on, as Caffe 1.0's ``Skip``
    (see :mod:`kaffe.parallel.context`).

    Tops: data (batch_size, C, H, W) (crop×crop with a crop); optional label
    (batch_size,). Backward does nothing (no bottoms).
    """

    min_top_blobs = 1
    max_top_blobs = 2

    def data_setup(self, top):
        p = self.layer_param.data_param
        if not p.source:
            raise self.config_error(
                "is not set", field="data_param.source",
                fix="name the LMDB/LevelDB directory to read")
        if p.batch_size <= 0:
            raise self.config_error(
                "must be > 0", field="data_param.batch_size",
                received=p.batch_size)
        if p.rand_skip:
            log.warning("data_param.rand_skip is ignored, as in Caffe 1.0")
        backend = backend_name(p.backend)
        try:
            self.db = open_db(p.source, backend, "read")
        except KaffeError as e:
            raise located(self, e, "data_param.source") from None
        self.source_name = p.source
        self.shard = data_shard(self.phase, p.batch_size)
        self.offset = 0
        self.cursor = self.db.cursor()
        if not self.cursor.valid:
            raise self.config_error(
                f"is an empty {backend} database", field="data_param.source",
                received=p.source, fix="fill it (kaffe convert_imageset, "
                                       "kaffe convert_mnist_data)")
        _, array = self._read()
        shape = list(self.transformer.infer_shape(array, self._where()))
        shape[0] = p.batch_size
        top[0].reshape(shape)
        log.info("output data size: %s", ",".join(map(str, shape)))
        if self.output_labels:
            top[1].reshape((p.batch_size,))

    def _where(self):
        key = self.cursor.key().decode("utf-8", "replace")
        return f"record '{key}' of {self.source_name}"

    def _read(self):
        datum = parse_datum(self.cursor.value(), where=self._where())
        return datum, self.transformer.datum_array(datum, self._where())

    def _next(self):
        self.cursor.next()
        if not self.cursor.valid:
            log.info("Restarting data prefetching from start.")
            self.cursor.seek_to_first()

    def load_batch(self):
        """Read batch_size Datums from the cursor (on the prefetch thread)."""
        batch_size = self.layer_param.data_param.batch_size
        data = labels = None
        if self.output_labels:
            labels = self.new_batch((batch_size,))
        for item in range(batch_size):
            self.offset = next_kept(self.shard, self.offset, self._next)
            datum, array = self._read()
            where = self._where()
            if item == 0:
                shape = list(self.transformer.infer_shape(array, where))
                shape[0] = batch_size
                data = self.new_batch(shape)
            self.transformer.transform(array, data[item], where)
            if labels is not None:
                labels[item] = datum.label
            self._next()
            self.offset += 1
        return data, labels

    def close(self):
        super().close()
        cursor = getattr(self, "cursor", None)
        if cursor is not None:
            cursor.close()
            self.cursor = None
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            self.db = None
