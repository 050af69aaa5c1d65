"""``BaseDetDataset``: what every detection dataset of rcnn_plugins shares.

On top of mmengine's ``BaseDataset`` it adds

- MMDetection's ``filter_cfg`` (``filter_empty_gt``, ``min_size``), applied in training only,
  with a ``DatasetError`` that says which filter removed what when nothing is left;
- the load-time existence check of every image (see :mod:`.validation`);
- errors during the pipeline (a corrupt image, a transform failing) re-raised with the dataset
  index and image path;
- a default palette that follows a user's ``metainfo=dict(classes=...)``;
- building the pipeline in the ``rcnn_plugins`` scope when no default scope is set, so that
  ``LoadImageFromFile`` etc. are our transforms even outside a Runner;
- MMDetection's ``proposal_file``: precomputed proposals put into each data_info as
  ``proposals = dict(bboxes (N, 4), scores (N,))`` (original pixels) for ``LoadProposals``
  (file format and safe loading: :mod:`.proposal_file`).
- ``__getitems__``, through which torch's data loader fetches a whole batch: a batch that
  carries one seed per sample (``SeededIndices`` from ``ResumableBatchSampler``, which the
  training loops install) runs each sample's pipeline under its own seed, so random transforms
  give the same result whichever worker process loads the sample (what bit-exact resume needs).

Subclasses implement ``load_data_list`` returning data_infos laid out as MMDetection 3.x's:
``dict(img_id, img_path, height, width, instances=[dict(bbox=[x1, y1, x2, y2],
bbox_label=int, ignore_flag=0|1)])``.
"""
import os.path as osp
from contextlib import nullcontext
from typing import Any, List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from ..registry import SCOPE
from ..rng import seeded_rng
from .errors import DatasetError
from .palette import default_palette
from .proposal_file import load_proposal_file, match_proposals
from .validation import check_images_exist


class BaseDetDataset(BaseDataset):
    """Base class of detection datasets (see module docstring).

    Args:
        proposal_file: a proposal pickle (relative to ``data_root`` unless absolute) matched to the
            images before filtering; None (default): no proposals.
        backend_args: mmengine file backend arguments used to read the annotation file and to
            check that images exist; None reads local files.
        **kwargs: mmengine ``BaseDataset`` arguments (``ann_file``, ``metainfo``, ``data_root``,
            ``data_prefix``, ``filter_cfg``, ``indices``, ``serialize_data``, ``pipeline``,
            ``test_mode``, ``lazy_init``, ``max_refetch``).
    """

    def __init__(self, *args, proposal_file: Optional[str] = None, backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        self.proposal_file = proposal_file
        self.backend_args = backend_args
        # mmengine's Compose builds transforms from the root registry, which only finds ours
        # when a default scope points here; a Runner sets one, a script or test may not.
        scope = DefaultScope.overwrite_default_scope(SCOPE) \
            if DefaultScope.get_current_instance() is None else nullcontext()
        with scope:
            super().__init__(*args, **kwargs)

    @classmethod
    def _load_metainfo(cls, metainfo: Optional[dict] = None) -> dict:
        """METAINFO updated by the user's metainfo; a user class list without a palette gets
        ``default_palette(len(classes))`` so that datasets with the same classes have the same
        metainfo (mmengine's ``ConcatDataset`` requires that)."""
        merged = super()._load_metainfo(metainfo)
        classes = merged.get('classes')
        if isinstance(classes, str):  # ('dog') is a string, not a tuple: a classic config slip
            raise DatasetError(f'metainfo classes must be a sequence of names, got the string {classes!r}; '
                               f"for one class write classes=({classes!r},) with the comma.")
        if metainfo is not None and 'classes' in metainfo and 'palette' not in metainfo:
            merged['palette'] = default_palette(len(merged['classes']))
        return merged

    def _has_gt(self, data_info: dict) -> bool:
        """Whether ``filter_empty_gt`` keeps the image: any instance, ignored ones included."""
        return bool(data_info['instances'])

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg`` (training only) and check that every kept image exists.

        ``filter_empty_gt`` drops images without any instance (ignored ones count as instances,
        as COCO crowd-only images are kept by MMDetection); ``min_size`` drops images whose
        shorter side is below it.
        """
        data_list = self.data_list
        if not data_list:
            raise DatasetError(f'{self.ann_file}: the annotation file lists no images.')
        # mmengine's full_init calls this right after load_data_list: the place where MMDetection
        # loads proposals, so a proposal list is aligned with the annotation file, not the kept images.
        if self.proposal_file is not None:
            self.load_proposals()
        if self.test_mode or not self.filter_cfg:
            kept = data_list
        else:
            filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
            min_size = self.filter_cfg.get('min_size', 0)
            kept, num_empty, num_small = [], 0, 0
            for data_info in data_list:
                if filter_empty_gt and not self._has_gt(data_info):
                    num_empty += 1
                elif min(data_info['width'], data_info['height']) < min_size:
                    num_small += 1
                else:
                    kept.append(data_info)
            if not kept:
                raise DatasetError(
                    f'{self.ann_file}: no image left after filtering {len(data_list)} images: '
                    f'filter_empty_gt=True removed {num_empty} without annotations of the classes '
                    f'{tuple(self.metainfo["classes"])}, min_size={min_size} removed {num_small} '
                    'smaller images. Check metainfo classes and filter_cfg.')
        check_images_exist([data_info['img_path'] for data_info in kept], self.backend_args)
        return kept

    def load_proposals(self) -> None:
        """Read ``proposal_file`` and set ``data_info['proposals']`` of every image."""
        if not osp.isabs(self.proposal_file) and self.data_root:
            self.proposal_file = osp.join(self.data_root, self.proposal_file)
        match_proposals(load_proposal_file(self.proposal_file, self.backend_args), self.data_list,
                        self.proposal_file)

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on data_info ``idx``; failures name the index and the image.

        A pipeline that returns None (e.g. ``LoadImageFromFile(ignore_empty=True)``) is left to
        mmengine's refetch of another index; an exception is never swallowed.
        """
        data_info = self.get_data_info(idx)
        try:
            return self.pipeline(data_info)
        except Exception as err:
            raise DatasetError(f'{type(self).__name__}[{idx}] (image {data_info.get("img_path")}, '
                               f'img_id {data_info.get("img_id")}): {type(err).__name__}: {err}') from err

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """``[self[idx] for idx in indices]``, each sample under ``indices.seeds[i]`` if given.

        The seeded block puts the generators back afterwards, so loading in the main process
        (``num_workers=0``) does not shift the random stream that the model's samplers use.
        """
        seeds = getattr(indices, 'seeds', None)
        if seeds is None:
            return [self[idx] for idx in indices]
        samples = []
        for idx, seed in zip(indices, seeds):
            with seeded_rng(seed):
                samples.append(self[idx])
        return samples

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels (0-based) of the instances of image ``idx``, for class-aware samplers."""
        return [instance['bbox_label'] for instance in self.get_data_info(idx)['instances']]
