"""Loading transforms: image file -> ``img``; data_info ``instances`` -> ``gt_*`` arrays.

Both keep mmcv's names and arguments (and are registered under them in the rcnn_plugins
scope, shadowing mmcv's), and add what detection training needs from them:

- ``LoadImageFromFile`` with the default ``color_type='color'`` always gives a 3-channel uint8
  BGR image: grayscale is replicated to 3 channels, alpha is dropped, 16-bit images are scaled
  to 8 bits (``round(v * 255 / 65535)``; OpenCV's own conversion would shift right by 8), and the
  EXIF orientation of JPEGs is applied (OpenCV does it unless told to ignore it). A missing file
  or one that does not decode raises ``DatasetError`` naming the path and what is wrong (empty,
  truncated JPEG / PNG, not an image). An image whose header announces more than ``max_pixels``
  pixels is refused before decoding, so a 20000 x 20000 file costs a message, not 1.2 GB.
- ``LoadAnnotations`` produces plain numpy arrays (no box classes) and also ``gt_ignore_flags``.
"""
import struct
from typing import Optional, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import LoadAnnotations as MMCVLoadAnnotations
from mmcv.transforms import LoadImageFromFile as MMCVLoadImageFromFile
from mmengine import fileio

from ...registry import TRANSFORMS
from ..errors import DatasetError


@TRANSFORMS.register_module()
class LoadImageFromFile(MMCVLoadImageFromFile):
    """Load ``results['img_path']`` into ``img`` (H, W, 3) uint8 BGR; set ``img_shape``, ``ori_shape`` (h, w).

    Arguments as mmcv's (``to_float32``, ``color_type``, ``imdecode_backend``, ``ignore_empty``,
    ``backend_args``); only ``color_type='color'`` (the default) gets the 3-channel uint8
    guarantee, other colour types return what ``mmcv.imfrombytes`` gives. With
    ``ignore_empty=True`` a missing or undecodable file gives None instead of an error.

    Args:
        max_pixels: images whose PNG / JPEG header says width x height is larger are refused
            before decoding (default 150 M pixels, about 12000 x 12000: 450 MB decoded); None
            turns the check off.
    """

    def __init__(self, *args, max_pixels: Optional[int] = 150_000_000, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            if self.file_client_args is not None:
                img_bytes = fileio.FileClient.infer_client(self.file_client_args, path).get(path)
            else:
                img_bytes = fileio.get(path, backend_args=self.backend_args)
        except OSError as err:  # FileNotFoundError, permission, is-a-directory
            if self.ignore_empty:
                return None
            raise DatasetError(f'cannot read image file {path}: {err}; check data_root, data_prefix and '
                               'the file names in the annotations') from err
        size = header_size(img_bytes)
        if self.max_pixels is not None and size is not None and size[0] * size[1] > self.max_pixels:
            raise DatasetError(
                f'image file {path} is {size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} M), more '
                f'than LoadImageFromFile(max_pixels={self.max_pixels}) allows (it would take '
                f'{size[0] * size[1] * 3 / 2**30:.1f} GiB decoded): downscale or tile it, or raise max_pixels '
                'in the pipeline.')
        try:
            img = self._decode(img_bytes)
        except ValueError as err:
            raise DatasetError(f'cannot use image file {path}: {err}') from err
        if img is None or img.size == 0:
            if self.ignore_empty:
                return None
            raise DatasetError(f'cannot decode image file {path}: {_why_undecodable(img_bytes)}; '
                               're-export or remove it')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _decode(self, img_bytes: bytes) -> Optional[np.ndarray]:
        """Bytes -> image; None if the decoder fails."""
        if self.color_type != 'color':
            return mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        # ANYDEPTH keeps 16-bit data 16-bit so it can be scaled below instead of bit-shifted;
        # without IMREAD_IGNORE_ORIENTATION OpenCV applies the EXIF orientation.
        flag = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH if self.imdecode_backend == 'cv2' else 'color'
        try:
            img = mmcv.imfrombytes(img_bytes, flag=flag, backend=self.imdecode_backend)
        except Exception:  # PIL and turbojpeg raise on bad data where cv2 returns None
            return None
        if img is None:
            return None
        return to_bgr_uint8(img)


def header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats or a
    header that cannot be parsed (the decoder then has the last word)."""
    if data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR' and len(data) >= 24:
        return struct.unpack('>II', data[16:24])
    if data[:2] != b'\xff\xd8':
        return None
    i = 2
    while i + 9 <= len(data):  # walk the JPEG segments up to the first start-of-frame
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack('>HH', data[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack('>H', data[i + 2:i + 4])[0]
    return None


def _why_undecodable(data: bytes) -> str:
    if not data:
        return 'the file is empty (0 bytes)'
    if data[:2] == b'\xff\xd8':
        if not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
            return f'truncated JPEG (no end-of-image marker after {len(data)} bytes)'
        return f'corrupt JPEG data ({len(data)} bytes)'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        if b'IEND' not in data[-12:]:
            return f'truncated PNG (no IEND chunk after {len(data)} bytes)'
        return f'corrupt PNG data ({len(data)} bytes)'
    return f'not an image in a format OpenCV reads (first bytes {data[:8]!r}, {len(data)} bytes)'


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """Any decoded image -> (H, W, 3) uint8: gray replicated, alpha dropped, 16-bit scaled.

    Raises ``ValueError`` for sample types other than uint8 / uint16 (e.g. float TIFF), whose
    value range cannot be guessed.
    """
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'unsupported image sample type {img.dtype}; convert the images to 8 or 16 bit')
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img)


@TRANSFORMS.register_module()
class LoadImageFromNDArray(LoadImageFromFile):
    """Take an in-memory image from ``results['img']`` (as :func:`inference_detector` passes it).

    The array goes through the same normalisation as a decoded file (3-channel uint8 BGR), and
    ``img_path`` is None so visualisation and metrics know there is no file behind it.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        if not isinstance(img, np.ndarray):
            raise TypeError(f'LoadImageFromNDArray: results["img"] must be a numpy array (H, W[, C]), '
                            f'got {type(img).__name__}')
        img = to_bgr_uint8(img)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_path'] = None
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadAnnotations(MMCVLoadAnnotations):
    """data_info ``instances`` -> ``gt_bboxes`` (N, 4) float32 xyxy pixels, ``gt_bboxes_labels``
    (N,) int64 and ``gt_ignore_flags`` (N,) bool.

    Arguments as mmcv's; ``with_seg`` and ``with_keypoints`` keep mmcv's behaviour. MMDetection's
    extra arguments are accepted so its configs run: ``with_mask`` (must stay False: rcnn_plugins
    has no mask head yet), ``poly2mask`` (only meaningful with masks) and ``box_type``
    (``'hbox'``, MMDetection's default, or None: both give the plain (N, 4) arrays above, there
    are no box classes here).
    """

    def __init__(self, with_mask: bool = False, poly2mask: bool = True, box_type: Optional[str] = 'hbox',
                 **kwargs) -> None:
        if with_mask:
            raise NotImplementedError('LoadAnnotations: with_mask=True: masks are not supported yet by '
                                      'rcnn_plugins (boxes only); set with_mask=False in the pipeline')
        if box_type not in ('hbox', None):
            raise ValueError(f"LoadAnnotations: box_type must be 'hbox' or None (axis-aligned xyxy boxes), "
                             f'got {box_type!r}')
        super().__init__(**kwargs)
        self.with_mask = with_mask
        self.poly2mask = poly2mask
        self.box_type = box_type

    def __repr__(self) -> str:
        # MMDetection 3.x's repr, not mmcv's.
        return (f'{self.__class__.__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, '
                f'with_mask={self.with_mask}, with_seg={self.with_seg}, poly2mask={self.poly2mask}, '
                f"imdecode_backend='{self.imdecode_backend}', backend_args={self.backend_args})")

    def _load_bboxes(self, results: dict) -> None:
        instances = results.get('instances', [])
        results['gt_bboxes'] = np.array([inst['bbox'] for inst in instances], dtype=np.float32).reshape(-1, 4)
        results['gt_ignore_flags'] = np.array([bool(inst.get('ignore_flag', 0)) for inst in instances], dtype=bool)

    def _load_labels(self, results: dict) -> None:
        instances = results.get('instances', [])
        results['gt_bboxes_labels'] = np.array([inst['bbox_label'] for inst in instances], dtype=np.int64)
