"""Key-value databases of Datums: LMDB and LevelDB, as Caffe's ``db::DB``.

The interface is Caffe's (``src/caffe/util/db*.cpp``)::

    db = open_db("train_lmdb", "lmdb", "read")
    cursor = db.cursor()             # at the first key, in key order
    while cursor.valid:
        use(cursor.key(), cursor.value())
        cursor.next()

    db = open_db("out_lmdb", "lmdb", "new")     # must not exist yet
    txn = db.transaction()
    txn.put(b"00000000", datum.SerializeToString())
    txn.commit()
    db.close()

:class:`BatchWriter` commits every 1000 puts, as Caffe's converters do.

* LMDB uses the ``lmdb`` package, opened as Caffe opens it (a directory;
  read-only readers; a full map doubles its size and retries the commit).
* LevelDB uses ``plyvel`` with Caffe's options (block size 64 KiB, write
  buffer 256 MiB, 100 open files).

Both packages are imported only when a DB is opened; a missing one is a
KaffeError that says what to install.
"""
import abc
import logging
import os
import threading
import weakref

from ..core.errors import KaffeConfigError, KaffeFormatError
from ..proto import caffe_pb2
from ..optional import require

log = logging.getLogger("kaffe")

BACKENDS = ("lmdb", "leveldb")
MODES = ("read", "write", "new")
COMMIT_EVERY = 1000

# LMDB's own default map size (10 MiB); it doubles whenever it fills up.
_LMDB_MAP_SIZE = 10 * 1024 * 1024


def backend_name(backend):
    """'lmdb' or 'leveldb' from a name (any case) or a DataParameter.DB."""
    if isinstance(backend, int):
        if backend == caffe_pb2.DataParameter.LMDB:
            return "lmdb"
        if backend == caffe_pb2.DataParameter.LEVELDB:
            return "leveldb"
    name = str(backend).lower()
    if name not in BACKENDS:
        raise KaffeConfigError("is not a known database backend",
                               field="backend", received=str(backend),
                               expected="lmdb or leveldb")
    return name


def open_db(source, backend, mode="read"):
    """Open ``source`` as a Caffe DB.

    Args:
        source: the DB's directory.
        backend: "lmdb" or "leveldb" (or DataParameter.LMDB/LEVELDB).
        mode: "read"; "new" (must not exist yet, as Caffe's db::NEW);
            "write" (create if missing, else add to it).

    Raises:
        KaffeFormatError: the DB cannot be opened (missing, not a DB, exists
            already in "new" mode).
        KaffeConfigError: the backend's Python package is not installed.
    """
    if mode not in MODES:
        raise KaffeConfigError("is not a DB open mode", field="mode",
                               received=mode, expected=" or ".join(MODES))
    backend = backend_name(backend)
    source = os.fspath(source)
    if backend == "lmdb":
        return LMDB(source, mode)
    return LevelDB(source, mode)


def _open_fix(source, backend, exists):
    if exists:
        fix = (f"check that '{source}' is a {backend} database, and that "
               f"data_param.backend / --backend names its kind")
    else:
        fix = ("check the path (relative paths are relative to the current "
               "directory); build a DB with `kaffe convert_imageset` or "
               "`kaffe convert_mnist_data`")
    return fix


class Cursor(abc.ABC):
    """Caffe's ``db::Cursor``: walks the records in key order."""

    @abc.abstractmethod
    def seek_to_first(self):
        """Go to the first record."""

    @abc.abstractmethod
    def next(self):
        """Go to the next record."""

    @property
    @abc.abstractmethod
    def valid(self):
        """Whether the cursor is on a record."""

    @abc.abstractmethod
    def key(self):
        """The current record's key (bytes)."""

    @abc.abstractmethod
    def value(self):
        """The current record's value (bytes)."""

    def close(self):
        """Release the cursor (a no-op once closed)."""


class Transaction(abc.ABC):
    """Caffe's ``db::Transaction``: puts buffered until :meth:`commit`."""

    @abc.abstractmethod
    def put(self, key, value):
        """Buffer one record."""

    @abc.abstractmethod
    def commit(self):
        """Write the buffered records."""


def _bytes(key):
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


# -- LMDB ---------------------------------------------------------------------
def _lmdb():
    return require("lmdb", "an LMDB database")


class LMDB:
    """An LMDB environment (a directory holding data.mdb and lock.mdb)."""

    backend = "lmdb"

    def __init__(self, source, mode):
        lmdb = _lmdb()
        self.source = source
        self.readonly = mode == "read"
        if mode == "new":
            try:
                os.mkdir(source, 0o744)
            except FileExistsError:
                raise KaffeFormatError(
                    f"'{source}' cannot be created: it already exists",
                    fix="delete it or choose another name (Caffe's tools "
                        "never overwrite a DB)") from None
            except OSError as e:
                raise KaffeFormatError(
                    f"'{source}' cannot be created ({e.strerror})") from None
        if self.readonly:
            if not os.path.exists(source):
                raise KaffeFormatError(
                    f"'{source}' cannot be opened as an LMDB: no such "
                    f"directory", fix=_open_fix(source, "lmdb", False))
            self.env = _shared_reader(lmdb, source)
            # A layer that is garbage-collected without close() still gives
            # its share back, so that the path can be opened again later.
            self._release = weakref.finalize(self, _release_reader, self.env)
        else:
            self.env = _open_env(lmdb, source, readonly=False)
        log.info("Opened lmdb %s", source)

    def cursor(self):
        return _LMDBCursor(self.env)

    def transaction(self):
        return _LMDBTransaction(self.env)

    def close(self):
        if self.env is not None:
            if self.readonly:
                self._release()
            else:
                self.env.close()
            self.env = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_env(lmdb, source, readonly):
    try:
        try:
            return lmdb.open(source, map_size=_LMDB_MAP_SIZE,
                             readonly=readonly, create=not readonly,
                             lock=True, subdir=True, max_dbs=0)
        except lmdb.Error as e:
            if not (readonly and "ermission" in str(e)):
                raise
            # Caffe's ALLOW_LMDB_NOLOCK: a read-only directory is read
            # without the lock file.
            log.warning("Permission denied. Trying with MDB_NOLOCK ...")
            return lmdb.open(source, map_size=_LMDB_MAP_SIZE, readonly=True,
                             create=False, lock=False, subdir=True, max_dbs=0)
    except lmdb.Error as e:
        raise KaffeFormatError(
            f"'{source}' cannot be opened as an LMDB ({e})",
            fix=_open_fix(source, "lmdb", os.path.exists(source))) from None


# LMDB refuses to open one environment twice in a process (its locks belong
# to the process), so all readers of a directory share one read-only
# environment: two nets on the same LMDB, a TRAIN and a TEST Data layer.
_readers = {}
_readers_lock = threading.Lock()


def _shared_reader(lmdb, source):
    key = os.path.realpath(source)
    with _readers_lock:
        entry = _readers.get(key)
        if entry is None:
            entry = _readers[key] = [_open_env(lmdb, source, True), 0]
        entry[1] += 1
        return entry[0]


def _release_reader(env):
    with _readers_lock:
        for key, entry in list(_readers.items()):
            if entry[0] is env:
                entry[1] -= 1
                if entry[1] == 0:
                    del _readers[key]
                    env.close()
                return


class _LMDBCursor(Cursor):
    def __init__(self, env):
        self._txn = env.begin(write=False, buffers=False)
        self._cursor = self._txn.cursor()
        self._valid = False
        self.seek_to_first()

    def seek_to_first(self):
        self._valid = self._cursor.first()

    def next(self):
        self._valid = self._cursor.next()

    @property
    def valid(self):
        return self._valid

    def key(self):
        return self._cursor.key()

    def value(self):
        return self._cursor.value()

    def close(self):
        if self._txn is not None:
            self._cursor.close()
            self._txn.abort()
            self._txn = None


class _LMDBTransaction(Transaction):
    def __init__(self, env):
        self._env = env
        self._items = []

    def put(self, key, value):
        self._items.append((_bytes(key), bytes(value)))

    def commit(self):
        lmdb = _lmdb()
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value in self._items:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                # Caffe's DoubleMapSize: grow the map and write it all again.
                size = self._env.info()["map_size"] * 2
                log.debug("Doubling LMDB map size to %dMB ...", size >> 20)
                self._env.set_mapsize(size)
        self._items.clear()


# -- LevelDB ------------------------------------------------------------------
def _plyvel():
    return require("plyvel", "a LevelDB database",
                   fix="or convert the data to LMDB (kaffe convert_imageset "
                       "/ convert_mnist_data --backend=lmdb) and set "
                       "data_param { backend: LMDB }")


class LevelDB:
    """A LevelDB directory, opened with Caffe's options."""

    backend = "leveldb"

    def __init__(self, source, mode):
        plyvel = _plyvel()
        self.source = source
        if mode == "read" and not os.path.exists(source):
            raise KaffeFormatError(
                f"'{source}' cannot be opened as a LevelDB: no such directory",
                fix=_open_fix(source, "leveldb", False)
                + "; data_param.backend defaults to LEVELDB: set "
                  "backend: LMDB for an LMDB")
        try:
            self.db = plyvel.DB(source, create_if_missing=mode != "read",
                                error_if_exists=mode == "new",
                                block_size=65536,
                                write_buffer_size=268435456,
                                max_open_files=100)
        except plyvel.Error as e:
            exists = os.path.exists(source)
            if mode == "new" and exists:
                raise KaffeFormatError(
                    f"'{source}' cannot be created: it already exists",
                    fix="delete it or choose another name") from None
            fix = _open_fix(source, "leveldb", exists)
            if exists and os.path.exists(os.path.join(source, "data.mdb")):
                fix = ("it is an LMDB: set data_param { backend: LMDB } (or "
                       "--backend=lmdb); LEVELDB is the proto default")
            raise KaffeFormatError(
                f"'{source}' cannot be opened as a LevelDB ({e})",
                fix=fix) from None
        log.info("Opened leveldb %s", source)

    def cursor(self):
        return _LevelDBCursor(self.db)

    def transaction(self):
        return _LevelDBTransaction(self.db)

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _LevelDBCursor(Cursor):
    def __init__(self, db):
        self._it = db.raw_iterator(fill_cache=False)
        self.seek_to_first()

    def seek_to_first(self):
        self._it.seek_to_first()

    def next(self):
        self._it.next()

    @property
    def valid(self):
        return self._it.valid()

    def key(self):
        return self._it.key()

    def value(self):
        return self._it.value()

    def close(self):
        if self._it is not None:
            self._it.close()
            self._it = None


class _LevelDBTransaction(Transaction):
    def __init__(self, db):
        self._db = db
        self._batch = db.write_batch()

    def put(self, key, value):
        self._batch.put(_bytes(key), bytes(value))

    def commit(self):
        self._batch.write()
        self._batch = self._db.write_batch()


# -- writing as Caffe's tools do ----------------------------------------------
class BatchWriter:
    """Puts records into a new DB, committing every 1000 as Caffe's tools do.

    ::

        with BatchWriter("out_lmdb", "lmdb") as writer:
            writer.put(key, value)

    Attributes:
        count: records put so far.
    """

    def __init__(self, source, backend, mode="new", on_commit=None):
        self.db = open_db(source, backend, mode)
        self.txn = self.db.transaction()
        self.count = 0
        self.on_commit = on_commit

    def put(self, key, value):
        self.txn.put(key, value)
        self.count += 1
        if self.count % COMMIT_EVERY == 0:
            self.txn.commit()
            self.txn = self.db.transaction()
            if self.on_commit:
                self.on_commit(self.count)

    def close(self):
        """Commit the last partial batch and close the DB."""
        if self.db is None:
            return
        if self.count % COMMIT_EVERY != 0:
            self.txn.commit()
            if self.on_commit:
                self.on_commit(self.count)
        self.db.close()
        self.db = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        elif self.db is not None:
            self.db.close()
            self.db = None
