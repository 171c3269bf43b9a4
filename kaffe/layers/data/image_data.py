"""ImageData: batches of image files named in a "path label" list file."""
import logging

from ...core.errors import KaffeFormatError
from ...core.registry import register_layer
from ...data.image import read_image
from ...data.listfile import read_list_file
from ...parallel.context import data_shard, next_kept
from .base_data import BasePrefetchingDataLayer
from .list_cursor import ListCursor

log = logging.getLogger("kaffe")


@register_layer("ImageData")
class ImageDataLayer(ListCursor, BasePrefetchingDataLayer):
    """Reads the images a list file names, transforms them, batches them.

    Reads image_data_param: source (a text file of "path label" lines, split
    at the last space), root_folder (prefixed to every path as a string, as
    in Caffe: end it with "/"), batch_size (1), shuffle (the list, at setup
    and after every pass), new_height/new_width (both or neither: resize
    bilinearly first, with OpenCV's INTER_LINEAR arithmetic), is_color (true:
    3-channel BGR; false: 1-channel grey), rand_skip (start at a random line
    below it); and transform_param.

    Images are decoded as OpenCV's ``imread`` does (see kaffe.data.image).
    Every batch is shaped by its first image. With several solvers a
    TRAIN-phase layer uses every N-th line of its list (from line
    ``solver_rank`` on, counted across passes), as Data does; a shuffled list
    is shuffled by each solver's own generator (Caffe seeds solver r with
    random_seed + r), so shuffled shards are samples, not a partition.

    Tops: data (batch_size, C, H, W), label (batch_size,). Backward does
    nothing (no bottoms).
    """

    exact_num_top_blobs = 2

    def data_setup(self, top):
        p = self.layer_param.image_data_param
        if (p.new_height == 0) != (p.new_width == 0):
            raise self.config_error(
                "and new_width must be set together", field=
                "image_data_param.new_height",
                received=f"new_height {p.new_height}, new_width "
                         f"{p.new_width}", fix="set both (to resize) or "
                                               "neither")
        if not p.source:
            raise self.config_error("is not set",
                                    field="image_data_param.source",
                                    fix="name the list file of images")
        log.info("Opening file %s", p.source)
        self.lines = read_list_file(p.source)
        if not self.lines:
            raise self.config_error(
                "lists no images", field="image_data_param.source",
                received=p.source, fix="write one 'path label' per line")
        self.open_list(self.lines, p, "image_data_param", "images")
        if p.batch_size <= 0:
            raise self.config_error("must be > 0",
                                    field="image_data_param.batch_size",
                                    received=p.batch_size)
        self.shard = data_shard(self.phase, p.batch_size)
        self.offset = 0
        image = self._read(self.lines[self.lines_id])
        shape = list(self.transformer.infer_shape(image.transpose(2, 0, 1)))
        shape[0] = p.batch_size
        top[0].reshape(shape)
        log.info("output data size: %s", ",".join(map(str, shape)))
        top[1].reshape((p.batch_size,))

    def _read(self, entry):
        p = self.layer_param.image_data_param
        image = read_image(p.root_folder + entry.path, p.new_height,
                           p.new_width, p.is_color)
        if image is None:
            raise KaffeFormatError(
                f"names an image that cannot be opened or decoded: "
                f"'{p.root_folder + entry.path}'", file=p.source,
                line=entry.line, fix="check the path, root_folder (it is "
                                     "prefixed as a string) and the file")
        return image

    def load_batch(self):
        """Read batch_size images (on the prefetch thread)."""
        p = self.layer_param.image_data_param
        data = None
        labels = self.new_batch((p.batch_size,))
        for item in range(p.batch_size):
            self.offset = next_kept(self.shard, self.offset, self._advance)
            entry = self.lines[self.lines_id]
            array = self._read(entry).transpose(2, 0, 1)
            where = f"image '{entry.path}' ({p.source}:{entry.line})"
            if item == 0:
                shape = list(self.transformer.infer_shape(array, where))
                shape[0] = p.batch_size
                data = self.new_batch(shape)
            self.transformer.transform(array, data[item], where)
            labels[item] = entry.label
            self._advance()
            self.offset += 1
        return data, labels
