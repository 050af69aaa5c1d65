"""Video input and output for ``DetInferencer``, through OpenCV (``cv2.VideoCapture`` / ``VideoWriter``).

Frames are read as (H, W, 3) uint8 BGR arrays, as image files are loaded. The annotated video is
written with the input's frame rate and frame size (drawings are the size of the frame), in an
OpenCV-writable container: ``.mp4``/``.m4v``/``.mov`` with the ``mp4v`` codec, ``.avi`` with
``MJPG``; other containers are written as ``.mp4``.
"""
import os.path as osp
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np
from mmengine.utils import mkdir_or_exist

_FOURCC = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v', '.avi': 'MJPG'}


class VideoReader:
    """Frames of a video file; raises ``OSError`` naming the file if OpenCV cannot open it.

    Attributes: ``fps`` (float), ``size`` (width, height), ``num_frames`` (the container's count;
    may be approximate, so iteration reads until the decoder stops).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._cap = cv2.VideoCapture(path)
        if not self._cap.isOpened():
            raise OSError(f'cannot open video file {path} (OpenCV found no decoder for it, or it is corrupt)')
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 25.0
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.num_frames = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self._cap.read()
                if not ok:
                    return
                yield frame
        finally:
            self._cap.release()


def video_out_name(name: str) -> str:
    """The annotated video's name: the input's, with ``.mp4`` for containers OpenCV cannot write."""
    stem, ext = osp.splitext(name)
    return name if ext.lower() in _FOURCC else stem + '.mp4'


class VideoSink:
    """Writes BGR frames to ``path`` at ``fps``; the writer opens on the first frame (its size)."""

    def __init__(self, path: str, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: Optional[cv2.VideoWriter] = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            mkdir_or_exist(osp.dirname(self.path) or '.')
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[osp.splitext(self.path)[1].lower()])
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(self.path, fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f'OpenCV cannot write video {self.path}; try an .avi or .mp4 name')
        self._writer.write(np.ascontiguousarray(frame))

    def close(self) -> Tuple[str, bool]:
        """Finish the file; returns (path, whether any frame was written)."""
        written = self._writer is not None
        if written:
            self._writer.release()
            self._writer = None
        return self.path, written
