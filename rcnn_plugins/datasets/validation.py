"""Load-time checks of detection annotations: which problems are fatal and which are repaired.

Every dataset checks its annotations ONCE, while it loads (``load_data_list`` and
``filter_data``, i.e. during ``full_init``), and reports each kind of problem in one message that
names the file, the records and the likely fix. The rule for choosing: a problem is FATAL
(``DatasetError``) when going on would train or evaluate on silently wrong data (a wrong class
list, a wrong image folder, a label that points nowhere); it is REPAIRED with one summarised
``DatasetWarning`` when real, correct datasets contain it (COCO has a handful of zero-size and
out-of-image boxes) and the repair cannot change the meaning of the data.

=====================================================================  =========================
Problem                                                                Outcome
=====================================================================  =========================
annotation file missing or unreadable                                  FATAL (path)
annotation file not valid JSON / XML                                   FATAL (file, line, column)
COCO json without ``images`` / ``categories``; record without fields   FATAL (file, record)
COCO image without a positive width and height, or a repeated image id FATAL (file, image ids)
box that is not 4 finite numbers (NaN, Infinity, text)                FATAL (file, record)
COCO annotation whose ``category_id`` is not in ``categories``         FATAL (ann id, image id, file);
                                                                       ``skip_unknown_categories=True``:
                                                                       skipped, one warning
COCO annotation id used more than once (``ANN_ID_UNIQUE``)             FATAL (file, ids)
COCO annotation whose ``image_id`` is not in ``images``                warning (ignored)
COCO: class in ``metainfo['classes']`` not named in ``categories``     FATAL (+ available names)
COCO: default 80 classes, file defines only some of them               warning; the subset loads
COCO: class that is defined but has no annotation                      warning
``metainfo['classes']`` given as one string (``('dog')``)              FATAL
XML class with no object in any file (XML files have no category
list; the warning lists the names found that are not classes)          warning
XML file missing, or object without name / numeric bndbox              FATAL (all listed)
box with zero or negative width or height (COCO: width or height
< 1 px or area <= 0, MMDetection's rule)                               dropped, one warning
box partly outside its image                                           clipped, one warning
box entirely outside its image                                         dropped (same warning)
image file missing (checked for every image kept after filtering)      FATAL (count, first
                                                                       paths, data_root hint)
dataset empty: no images, or none left after filtering                 FATAL (which filter
                                                                       removed how many)
image that fails to decode while training / testing                    error naming the image
                                                                       path and dataset index
=====================================================================  =========================

Decoding every image at load time would take minutes on COCO, so only existence is checked
then; decoding failures are reported by ``BaseDetDataset.prepare_data`` when they happen.
"""
import warnings
from typing import Iterable, List, Optional, Sequence

from mmengine import fileio

from .errors import DatasetError, DatasetWarning

#: How many offending records a message lists by name before it only counts the rest.
MAX_LISTED = 5


def list_some(items: Sequence, max_listed: int = MAX_LISTED) -> str:
    """``'a, b, c'`` or ``'a, b, c, ... (12 in all)'`` for long lists."""
    shown = ', '.join(str(item) for item in items[:max_listed])
    if len(items) > max_listed:
        shown += f', ... ({len(items)} in all)'
    return shown


def warn(message: str) -> None:
    """Emit a ``DatasetWarning`` (shown once per distinct message by Python's filters)."""
    warnings.warn(message, DatasetWarning, stacklevel=3)


class BoxSanitizer:
    """Clips xyxy boxes to their image and drops degenerate ones, remembering what it did.

    One instance is used for one annotation source (a json file, a folder of XML files);
    :meth:`report` then emits at most two summarised warnings.

    Args:
        source: file or folder named in the warnings.
        min_size: boxes whose width or height (before clipping) is below this are dropped too.
            0 drops only zero or negative sizes; COCO uses 1 (MMDetection skips such boxes).
    """

    def __init__(self, source: str, min_size: float = 0.) -> None:
        self.source = source
        self.min_size = min_size
        self.degenerate: List[str] = []
        self.outside: List[str] = []
        self.clipped: List[str] = []

    def __call__(self, bbox: Sequence[float], width: int, height: int, ref: str) -> Optional[List[float]]:
        """Return the box clipped to ``[0, width] x [0, height]``, or None if it is dropped.

        Args:
            bbox: ``[x1, y1, x2, y2]`` in pixels.
            width, height: image size in pixels.
            ref: how the warning names this record, e.g. ``'ann id 17 (image 3)'``.
        """
        x1, y1, x2, y2 = bbox
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0 or w < self.min_size or h < self.min_size:
            self.degenerate.append(ref)
            return None
        clipped = [min(max(x1, 0), width), min(max(y1, 0), height),
                   min(max(x2, 0), width), min(max(y2, 0), height)]
        if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
            self.outside.append(ref)
            return None
        if clipped != list(bbox):
            self.clipped.append(ref)
        return clipped

    def report(self) -> None:
        """Emit the summarised warnings (nothing if every box was fine)."""
        num_dropped = len(self.degenerate) + len(self.outside)
        if num_dropped:
            parts = []
            if self.degenerate:
                size_rule = (f'width or height < {self.min_size} px' if self.min_size > 0
                             else 'zero or negative width or height')
                parts.append(f'{len(self.degenerate)} with {size_rule} ({list_some(self.degenerate)})')
            if self.outside:
                parts.append(f'{len(self.outside)} entirely outside their image ({list_some(self.outside)})')
            warn(f'{self.source}: dropped {num_dropped} boxes: ' + '; '.join(parts) + '.')
        if self.clipped:
            warn(f'{self.source}: clipped {len(self.clipped)} boxes that reach outside their image '
                 f'to the image border ({list_some(self.clipped)}).')


def check_images_exist(img_paths: Iterable[str], backend_args: Optional[dict] = None) -> None:
    """Raise one ``DatasetError`` naming the missing images (first few paths and the count).

    ``os.path.exists`` for local files (what ``mmengine.fileio.exists`` does for them), so this
    costs one stat per image.
    """
    missing = [path for path in img_paths if not fileio.exists(path, backend_args=backend_args)]
    if missing:
        raise DatasetError(
            f'{len(missing)} image files referenced by the annotations do not exist: {list_some(missing)}. '
            'Check data_root and data_prefix (the image path is data_root + data_prefix + file name).')
