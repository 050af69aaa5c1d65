"""What one request may cost the server, and the checks made before an upload is decoded.

The pixel check follows the image loader's rule (``LoadImageFromFile(max_pixels=...)``): the
width and height a PNG / JPEG header announces are read without decoding, so a 40000 x 40000
PNG of a few kilobytes costs a message, not 4.8 GB. BMP and WebP headers are read here too;
other formats are left to OpenCV, whose own pixel cap the command line sets to the same limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``).
"""
import struct
from dataclasses import dataclass
from typing import Optional, Tuple

from ...datasets.transforms.loading import header_size
from .errors import RequestError

# Request bodies accepted: a form upload, JSON with base64, or the raw image bytes.
BODY_TYPES = ('multipart/form-data', 'application/json', 'application/octet-stream')


@dataclass
class ServeLimits:
    """Limits of one server process.

    Attributes:
        max_upload_bytes: largest request body (413 above it; checked from ``Content-Length``
            before reading, and while reading a body of unknown length).
        max_pixels: largest width x height an image may announce (413 above it).
        request_timeout_s: a request still unanswered after this long gets 504.
        max_queue: images waiting for the model; one more gets 503 with ``Retry-After``.
    """
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 50_000_000
    request_timeout_s: float = 30.0
    max_queue: int = 64

    def check_declared_length(self, content_length: Optional[str]) -> None:
        if content_length is None:
            return
        try:
            length = int(content_length)
        except ValueError:
            raise RequestError(400, 'bad_content_length', f'Content-Length {content_length!r} is not a number')
        if length > self.max_upload_bytes:
            raise self.too_large(length)

    def too_large(self, length: int) -> RequestError:
        return RequestError(413, 'upload_too_large',
                            f'the request body is {length} bytes, more than this server accepts '
                            f'({self.max_upload_bytes} bytes, --max-upload-mb); send a smaller (re-encoded '
                            'or downscaled) image')

    def check_pixels(self, data: bytes) -> None:
        """413 when the image header announces more than ``max_pixels`` pixels."""
        size = image_header_size(data)
        if size is not None and size[0] * size[1] > self.max_pixels:
            w, h = size
            raise RequestError(413, 'too_many_pixels',
                               f'the image header says {w}x{h} pixels ({w * h / 1e6:.0f} M), more than this '
                               f'server decodes ({self.max_pixels / 1e6:g} M, --max-pixels); downscale or tile it')


def image_header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) announced by a PNG, JPEG (the loader's parser), BMP or WebP header; None else."""
    size = header_size(data)
    if size is not None:
        return size
    if data[:2] == b'BM' and len(data) >= 26:  # BITMAPINFOHEADER: int32 width, height (negative: top-down)
        w, h = struct.unpack('<ii', data[18:26])
        return abs(w), abs(h)
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP' and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b'VP8X':  # 24-bit canvas width - 1, height - 1
            return (int.from_bytes(data[24:27], 'little') + 1, int.from_bytes(data[27:30], 'little') + 1)
        if chunk == b'VP8 ':  # 14-bit width / height after the key-frame start code
            w, h = struct.unpack('<HH', data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b'VP8L':  # 14 + 14 bits after the signature byte
            bits = int.from_bytes(data[21:25], 'little')
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def check_complete(data: bytes) -> None:
    """400 for a JPEG without an end-of-image marker after its last scan, or a PNG without its
    IEND chunk: OpenCV decodes many truncated files, filling the missing rows with grey, which
    would silently give detections of half an image."""
    if data[:2] == b'\xff\xd8':
        last_scan = data.rfind(b'\xff\xda')
        if last_scan < 0 or data.find(b'\xff\xd9', last_scan) < 0:
            raise RequestError(400, 'truncated_image', f'truncated JPEG: no end-of-image marker after the last '
                                                       f'scan ({len(data)} bytes received); send the whole file')
    elif data[:8] == b'\x89PNG\r\n\x1a\n' and b'IEND' not in data[-64:]:
        raise RequestError(400, 'truncated_image', f'truncated PNG: no IEND chunk at the end ({len(data)} bytes '
                                                   'received); send the whole file')
