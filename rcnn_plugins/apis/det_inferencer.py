"""``DetInferencer``: run a detector on a user's images, folders, videos or arrays and save the results.

MMDetection 3.x's class and call signature, so its notebook code carries over::

    inferencer = DetInferencer(model='configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py',
                               weights='work_dirs/demo/epoch_10.pth', device='cpu')
    out = inferencer('photos/', out_dir='outputs', batch_size=4, no_save_pred=False)
    out['predictions'][0]          # {'labels': [...], 'scores': [...], 'bboxes': [[x1, y1, x2, y2], ...], ...}

With ``out_dir`` it writes ``vis/<name>`` (the input with the boxes scoring above
``pred_score_thr`` drawn; a video becomes an annotated video of the same fps and size) and,
unless ``no_save_pred``, ``preds/<stem>.json`` (``preds/<stem>.jsonl`` for a video; format in
:mod:`rcnn_plugins.apis.results`). Several images go through the model per forward pass
(``batch_size``; the data preprocessor pads the batch). A file that cannot be read is reported
by name and skipped; the run goes on. ``slice_cfg`` switches to sliced inference for large
images (:mod:`rcnn_plugins.apis.slicing`). ``tta=True`` runs test-time augmentation
(:mod:`rcnn_plugins.apis.tta`: the config's ``tta_model`` / ``tta_pipeline``, else flip + no
flip), one image per forward pass.
"""
import os.path as osp
import sys
import warnings
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from tqdm import tqdm

from ..config_utils import get_test_pipeline_cfg
from ..config_utils import num_classes as config_num_classes
from ..datasets.transforms.loading import to_bgr_uint8
from ..deployment.backends import BackendPredictor, require_backend
from ..registry import DATASETS, MODELS, TRANSFORMS, build_or_use
from ..structures import DetDataSample
from ..visualization import DetLocalVisualizer
from .batching import batch_by_shape, group_by_shape
from .inference import init_detector
from .inference_path import inference_autocast
from .inputs import InputItem, InputsType, check_array, collect_inputs, missing_input_error
from .results import CocoResultsWriter, OutputWriter, pred_to_dict
from .slicing import check_slice_cfg, sliced_predict
from .video import VideoReader

# One unit of work: (item, frame index (None for an image), (H, W, 3) uint8 BGR image).
_Frame = Tuple[InputItem, Optional[int], np.ndarray]


class DetInferencer:
    """Detection inferencer (see module docstring).

    Args:
        model: config file path or ``Config``.
        weights: checkpoint path; ``None`` keeps random weights (for timing or tests).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; ``None`` picks CUDA when available.
        palette: box colours (see :func:`rcnn_plugins.visualization.get_palette`); ``'none'``
            uses the checkpoint's palette, else random colours.
        show_progress: show a progress bar (images per second) while running.
        classes: class names, overriding those stored in the checkpoint or config.
        tta: test-time augmentation (see the module docstring).
        exact: run the model as built; by default the fastest path equal to it to float rounding
            is used and logged (:mod:`rcnn_plugins.apis.inference_path`).
        amp: bf16 autocast + channels-last on a CPU with native bf16 (refused elsewhere), fp16 on a GPU.
        backend: ``'pytorch'`` (default), ``'onnxruntime'`` or ``'openvino'``: the model exported on
            first use (cached next to the weights) and run on that runtime's CPU device, fp32
            (:mod:`rcnn_plugins.deployment.backends`).
        onnx_path: with an exported backend, run this ONNX file (e.g. the int8 model of
            ``tools/deployment/quantize.py``) instead of the cached export.
    """

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None, device: Optional[str] = None,
                 palette: str = 'none', show_progress: bool = True,
                 classes: Optional[Sequence[str]] = None, tta: bool = False, exact: bool = False,
                 amp: bool = False, backend: str = 'pytorch', onnx_path: Optional[str] = None) -> None:
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        logger = MMLogger.get_current_instance()
        level = logger.level
        if weights is None:
            logger.setLevel('WARNING')  # random init logs every parameter's initialiser
        require_backend(backend)
        exported = backend != 'pytorch'
        if tta and exported:
            raise ValueError(f'tta=True runs the PyTorch model over several views; it cannot be combined with '
                             f"backend={backend!r}: use backend='pytorch' with tta, or drop tta")
        try:
            # An exported backend is exported from the model as built (the runtime optimises it).
            self.model = init_detector(model, weights, device=device, exact=exact or exported, amp=amp and not exported)
        finally:
            logger.setLevel(level)
        self.backend = backend
        self._backend = (BackendPredictor(self.model, backend, weights, onnx_path=onnx_path)
                         if exported else None)
        self.cfg = self.model.cfg
        self.device = device
        self.show_progress = show_progress
        self.classes = self._resolve_classes(classes)
        pipeline = get_test_pipeline_cfg(self.cfg)
        self._load_file = TRANSFORMS.build(pipeline[0])
        # Files and arrays share one pipeline: files are decoded by the config's loader first.
        self._pipeline = Compose([dict(type='LoadImageFromNDArray')] + pipeline[1:])
        self.tta_model = None
        if tta:
            self._enable_tta(pipeline)
        meta = dict(self.model.dataset_meta or {})
        meta['classes'] = self.classes
        if palette != 'none':
            meta['palette'] = palette
        self.visualizer = DetLocalVisualizer(name=f'det_inferencer_{id(self)}')
        self.visualizer.dataset_meta = meta
        self.skipped: List[str] = []  # inputs the last call could not read

    def _resolve_classes(self, classes: Optional[Sequence[str]]) -> Tuple[str, ...]:
        """``classes`` > checkpoint ``dataset_meta`` > the config's dataset > ``class i``.

        A proposal-only model (an RPN: one class-agnostic "object" class, no RoI head) is named
        ``('object',)`` unless ``classes`` gives its one name: the dataset's class list does not
        describe its labels.
        """
        num_classes = config_num_classes(self.cfg)
        if num_classes == 1 and self.cfg.model.get('roi_head') is None and classes is None:
            return ('object', )
        dataset = (self.cfg.get('test_dataloader') or self.cfg.get('val_dataloader') or {}).get('dataset', {})
        dataset_type = dataset.get('type')
        sources = [('--classes', classes),
                   ('the checkpoint', (self.model.dataset_meta or {}).get('classes')),
                   ('the config', (dataset.get('metainfo') or {}).get('classes')),
                   (dataset_type, DATASETS.get(dataset_type).METAINFO.get('classes')
                    if dataset_type in DATASETS else None)]
        for source, names in sources:
            if names is None:
                continue
            if len(names) != num_classes:
                raise ValueError(f'{len(names)} class names from {source} ({", ".join(names)}) but the model '
                                 f'has {num_classes} classes; pass {num_classes} names (--classes / classes=)')
            return tuple(names)
        return tuple(f'class {i}' for i in range(num_classes))

    # ------------------------------------------------------------------ model
    def _enable_tta(self, test_pipeline: list) -> None:
        """Wrap the detector in the config's ``tta_model`` and use its ``tta_pipeline`` (defaults:
        :mod:`rcnn_plugins.apis.tta`); the loader step is replaced as for the test pipeline."""
        from .tta import DEFAULT_TTA_MODEL, default_tta_pipeline
        tta_model = dict(self.cfg.get('tta_model') or DEFAULT_TTA_MODEL)
        self.tta_model = build_or_use(MODELS, dict(tta_model, module=self.model)).eval()
        tta_pipeline = self.cfg.get('tta_pipeline') or default_tta_pipeline(test_pipeline)
        self._pipeline = Compose([dict(type='LoadImageFromNDArray')] + list(tta_pipeline[1:]))

    def _pack(self, img: np.ndarray) -> dict:
        """BGR image -> the test pipeline's output (resized (3, h, w) uint8 tensor + sample)."""
        return self._pipeline(dict(img=img, img_id=0))

    @torch.no_grad()
    def _forward(self, packed: List[dict]) -> List[DetDataSample]:
        """One forward pass; predictions in each input image's pixels, on the CPU."""
        if self._backend is not None:
            return self._backend.test_step(pseudo_collate(packed))
        model = self.model if self.tta_model is None else self.tta_model
        with inference_autocast(self.model, self.device):
            return [result.cpu() for result in model.test_step(pseudo_collate(packed))]

    def predict_arrays(self, imgs: List[np.ndarray]) -> List[DetDataSample]:
        """Predict BGR images (H, W, 3): one forward pass per group of one padded shape
        (:mod:`rcnn_plugins.apis.batching`), results in input order."""
        packed = [self._pack(img) for img in imgs]
        if self.tta_model is not None:  # views of one image per forward pass
            return [self._forward([p])[0] for p in packed]
        results: List[Optional[DetDataSample]] = [None] * len(imgs)
        for group in group_by_shape(packed, self._pad_divisor):
            for i, result in zip(group, self._forward([packed[i] for i in group])):
                results[i] = result
        return results

    def _predict_instances(self, imgs: List[np.ndarray]) -> List[InstanceData]:
        return [result.pred_instances for result in self.predict_arrays(imgs)]

    @property
    def _pad_divisor(self) -> int:
        return getattr(self.model.data_preprocessor, 'pad_size_divisor', 1)

    # ------------------------------------------------------------------ inputs
    def _frames(self, items: List[InputItem], progress: tqdm) -> Iterator[_Frame]:
        """Every image, and every frame of every video, in input order; unreadable inputs are
        reported and left out."""
        for item in items:
            if item.array is not None:
                try:
                    img = to_bgr_uint8(check_array(item.array))  # as the pipeline's array loader does
                except ValueError as err:
                    self._skip(item, err, progress)
                    continue
                yield item, None, img
            elif item.is_video:
                try:
                    reader = VideoReader(item.path)
                except OSError as err:
                    self._skip(item, err, progress)
                    continue
                item.fps = reader.fps
                progress.total += max(reader.num_frames - 1, 0)  # counted as one input so far
                progress.refresh()
                for index, frame in enumerate(reader):
                    yield item, index, frame
            else:
                try:
                    img = self._load_file(dict(img_path=item.path))['img']
                except Exception as err:  # DatasetError, OSError, ValueError: reported, never fatal
                    self._skip(item, err, progress)
                    continue
                yield item, None, img

    def _skip(self, item: InputItem, err: Exception, progress: tqdm) -> None:
        what = item.path or f'array input {item.name}'
        if item.path is not None and not item.is_video and not osp.exists(item.path):
            err = missing_input_error(item)  # not the loader's training hint about data_root
        self.skipped.append(what)
        progress.write(f'WARNING: skipped {what}: {err}', file=sys.stderr)
        progress.update(1)

    def _predicted(self, frames: Iterator[_Frame], batch_size: int, slice_cfg: Optional[dict],
                   progress: tqdm) -> Iterator[Tuple[_Frame, DetDataSample]]:
        """(frame, sample) in input order; batched by padded shape, or sliced one image at a time."""
        if slice_cfg is not None:
            for frame in frames:
                pred = sliced_predict(frame[2], self._predict_instances, batch_size=batch_size, **slice_cfg)
                sample = DetDataSample(metainfo=dict(ori_shape=frame[2].shape[:2]))
                sample.pred_instances = pred
                progress.update(1)
                yield frame, sample
            return

        def run(packed: List[dict]) -> List[DetDataSample]:
            results = self._forward(packed)
            progress.update(len(packed))
            return results

        if self.tta_model is not None:  # views of one image per forward pass
            for frame in frames:
                yield frame, run([self._pack(frame[2])])[0]
            return

        # Images wait for a full batch of their shape until 4 batches' worth of others arrived.
        yield from batch_by_shape(((frame, self._pack(frame[2])) for frame in frames), run, batch_size,
                                  self._pad_divisor, max_waiting=4 * batch_size)

    # ------------------------------------------------------------------ call
    def __call__(self,
                 inputs: InputsType,
                 batch_size: int = 1,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0,
                 no_save_vis: bool = False,
                 draw_pred: bool = True,
                 pred_score_thr: float = 0.3,
                 return_datasamples: bool = False,
                 print_result: bool = False,
                 no_save_pred: bool = True,
                 out_dir: str = '',
                 recursive: bool = False,
                 slice_cfg: Optional[dict] = None,
                 coco_json: Optional[str] = None,
                 ann_file: Optional[str] = None) -> dict:
        """Run on ``inputs`` (see :mod:`rcnn_plugins.apis.inputs`).

        Args:
            inputs: image / video file, folder, glob, list file, array, or a list of them.
            batch_size: images (or tiles, when slicing) per forward pass.
            return_vis: return the drawings (RGB arrays) in ``visualization``.
            show, wait_time: display each drawing (needs a GUI matplotlib backend).
            no_save_vis: do not write ``out_dir/vis``.
            draw_pred: draw the predictions (else the drawing is the bare image).
            pred_score_thr: detections scoring at or below are not drawn (all are saved/returned).
            return_datasamples: return ``DetDataSample`` objects instead of dicts.
            print_result: print each prediction dict.
            no_save_pred: do not write ``out_dir/preds`` (MMDetection's default: True).
            out_dir: output folder; ``''`` writes nothing.
            recursive: search sub-folders of folder inputs (and ``**`` in globs).
            slice_cfg: sliced inference, e.g. ``dict(slice_hw=(512, 512), overlap=0.2)``; keys in
                :func:`rcnn_plugins.apis.slicing.check_slice_cfg`.
            coco_json: also write every image's detections to this COCO results file.
            ann_file: COCO annotations giving ``coco_json``'s image and category ids.

        Returns:
            ``dict(predictions=[...], visualization=[...])``: one entry per image / video frame
            read, in input order (``visualization`` empty unless ``return_vis``).
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        slice_cfg = check_slice_cfg(slice_cfg)
        items = collect_inputs(inputs, recursive=recursive)
        self.skipped = []
        save_vis = bool(out_dir) and not no_save_vis
        writer = OutputWriter(out_dir, save_vis=save_vis, save_pred=bool(out_dir) and not no_save_pred)
        coco = CocoResultsWriter(self.classes, ann_file) if coco_json else None
        draw = save_vis or return_vis or show
        outputs = dict(predictions=[], visualization=[])

        progress = tqdm(total=len(items), unit='img', disable=not self.show_progress, dynamic_ncols=True)
        for (item, index, img), sample in self._predicted(self._frames(items, progress), batch_size, slice_cfg,
                                                          progress):
            sample.set_metainfo(dict(img_path=item.path, frame=index))
            pred = pred_to_dict(sample.pred_instances, self.classes)
            if print_result:
                print(pred)
            outputs['predictions'].append(sample if return_datasamples else pred)
            if coco is not None and index is None:
                coco.add(item.name, pred)
            drawing = self._draw(item.name, img, sample, draw_pred, show, wait_time, pred_score_thr) if draw else None
            if return_vis:
                outputs['visualization'].append(drawing)
            writer.write(item, index, pred, drawing)
        progress.close()
        writer.close()
        if coco is not None:
            num = coco.dump(coco_json)
            print(f'COCO results: {num} detections written to {coco_json}', file=sys.stderr)
        if self.skipped:
            print(f'{len(self.skipped)} input(s) could not be read and were skipped: {", ".join(self.skipped)}',
                  file=sys.stderr)
        return outputs

    def _draw(self, name: str, img: np.ndarray, sample: DetDataSample, draw_pred: bool, show: bool,
              wait_time: float, pred_score_thr: float) -> np.ndarray:
        """The image (BGR) with the predictions above ``pred_score_thr`` drawn; returns RGB."""
        with warnings.catch_warnings():
            # mmengine warns for every box touching the border, which boxes clipped to the image do.
            warnings.filterwarnings('ignore', message='Warning: The (bbox|polygon) is out of bounds')
            self.visualizer.add_datasample(name, img[..., ::-1], sample, draw_gt=False, draw_pred=draw_pred,
                                           show=show, wait_time=wait_time, pred_score_thr=pred_score_thr)
        return self.visualizer.get_image()
