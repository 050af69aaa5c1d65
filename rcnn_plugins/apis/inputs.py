"""What ``DetInferencer`` / ``tools/infer.py`` accept as inputs, turned into a list of named items.

An input is an image file, a video file, a folder of images (its sub-folders too with
``recursive``), a glob pattern, a text file with one path per line, a numpy array (H, W[, C]),
or a list of any of these. Each becomes an :class:`InputItem` with the name its outputs are
written under (``vis/<name>``, ``preds/<stem of name>.json``): a file's path relative to the
folder or glob root it was found in (so sub-folders are mirrored, never collide), else its file
name; ``{index:08}.jpg`` for arrays, as MMDetection names them.
"""
import glob
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv')

InputsType = Union[str, np.ndarray, Sequence[Union[str, np.ndarray]]]


@dataclass
class InputItem:
    """One image or video to run on.

    Attributes:
        name: output name (relative path with extension, ``/``-separated).
        path: the file, or ``None`` for an in-memory array.
        array: the image (H, W[, C]) for in-memory inputs.
        is_video: frames are read with OpenCV and written back as a video.
        fps: a video's frame rate, set when it is opened.
        origin: where the path came from when a list file named it (``list.txt, line 7``).
    """
    name: str
    path: Optional[str] = None
    array: Optional[np.ndarray] = None
    is_video: bool = False
    fps: Optional[float] = None
    origin: Optional[str] = None


def check_array(array: np.ndarray) -> np.ndarray:
    """An in-memory image must be (H, W) or (H, W, 1 | 3 | 4) with H, W >= 1; raises ``ValueError`` else."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)) or 0 in array.shape[:2]:
        raise ValueError(f'an image array must be (H, W) or (H, W, 1|3|4) with H, W >= 1, got shape {array.shape}')
    return array


def is_video_file(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _is_media(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS + VIDEO_EXTENSIONS)


def _file_item(path: str, root: Optional[str]) -> InputItem:
    name = osp.relpath(path, root) if root else osp.basename(path)
    return InputItem(name=name.replace(os.sep, '/'), path=path, is_video=is_video_file(path))


def _from_folder(folder: str, recursive: bool) -> List[InputItem]:
    if recursive:
        paths = [osp.join(d, f) for d, _, files in os.walk(folder) for f in files]
    else:
        paths = [osp.join(folder, f) for f in os.listdir(folder)]
    # Other files (notes, annotation files) are not inputs; unreadable *images* are reported later.
    paths = sorted(p for p in paths if osp.isfile(p) and _is_media(p))
    return [_file_item(p, folder) for p in paths]


def _from_glob(pattern: str, recursive: bool) -> List[InputItem]:
    # Names are relative to the pattern's fixed leading folders, e.g. 'data/**/*.jpg' -> 'data'.
    parts = pattern.replace(os.sep, '/').split('/')
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = '/'.join(fixed) or None
    paths = sorted(p for p in glob.glob(pattern, recursive=recursive) if osp.isfile(p))
    return [_file_item(p, root) for p in paths]


def _from_list_file(list_file: str) -> List[InputItem]:
    """One path per line; blank lines and ``#`` comments skipped; relative paths are tried from the
    current folder, then from the list file's folder. Missing files stay in (reported when read)."""
    base = osp.dirname(osp.abspath(list_file))
    items = []
    with open(list_file) as f:
        for lineno, line in enumerate(f, 1):
            path = line.strip()
            if not path or path.startswith('#'):
                continue
            if not osp.isabs(path) and not osp.exists(path) and osp.exists(osp.join(base, path)):
                path = osp.join(base, path)
            item = _file_item(path, None)
            item.origin = f'{list_file}, line {lineno}'
            items.append(item)
    if not items:
        raise FileNotFoundError(f'list file {list_file} names no images or videos (one path per line; '
                                'blank lines and # comments are skipped)')
    return items


def missing_input_error(item: InputItem) -> FileNotFoundError:
    """The error for an input file that does not exist, naming the list file and line it came from."""
    if item.origin:
        return FileNotFoundError(f'no such file (named in {item.origin}; relative paths are tried from the '
                                 'current folder, then from the list file\'s folder)')
    return FileNotFoundError('no such file')


def collect_inputs(inputs: InputsType, recursive: bool = False) -> List[InputItem]:
    """Expand ``inputs`` (see module docstring) into items with unique output names.

    Raises ``FileNotFoundError`` naming the input when a given path, folder, glob or list file
    matches nothing, ``ValueError`` when ``inputs`` is an empty list.
    """
    if isinstance(inputs, (str, os.PathLike, np.ndarray)):
        inputs = [inputs]
    if len(inputs) == 0:
        raise ValueError('no inputs given: pass image / video files, folders, glob patterns, list files or arrays')
    items: List[InputItem] = []
    num_arrays = 0
    for inp in inputs:
        if isinstance(inp, np.ndarray):
            items.append(InputItem(name=f'{num_arrays:08}.jpg', array=inp))
            num_arrays += 1
            continue
        inp = os.fspath(inp)
        if osp.isdir(inp):
            found = _from_folder(inp, recursive)
            if not found:
                raise FileNotFoundError(f'input folder {inp} holds no images or videos ({", ".join(IMG_EXTENSIONS)}; '
                                        f'videos {", ".join(VIDEO_EXTENSIONS)})'
                                        + ('' if recursive else '; add --recursive to search its sub-folders'))
            items.extend(found)
        elif glob.has_magic(inp) and not osp.exists(inp):
            found = _from_glob(inp, recursive)
            if not found:
                raise FileNotFoundError(f'input pattern {inp!r} matches no files')
            items.extend(found)
        elif inp.lower().endswith('.txt') and osp.isfile(inp):
            items.extend(_from_list_file(inp))
        elif osp.isfile(inp):
            items.append(_file_item(inp, None))
        else:
            raise FileNotFoundError(f'input {inp!r} is not a file, folder, glob pattern or list file')
    return _unique_names(items)


def _unique_names(items: List[InputItem]) -> List[InputItem]:
    """Give later duplicates of a name (same file name from two folders of a list) a ``_N`` suffix.

    Names are compared by stem too, because predictions are written as ``<stem>.json``.
    """
    seen = set()
    for item in items:
        stem, ext = osp.splitext(item.name)
        candidate, k = stem, 1
        while candidate in seen:
            candidate = f'{stem}_{k}'
            k += 1
        seen.add(candidate)
        item.name = candidate + ext
    return items
