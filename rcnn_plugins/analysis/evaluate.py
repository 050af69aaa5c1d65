"""Re-evaluate saved predictions with a config's test metrics, without the model."""
import copy
from typing import List, Optional, Sequence

from mmengine.config import Config
from mmengine.evaluator import Evaluator

from .. import config_utils
from ..registry import DATASETS


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """A config file with ``--cfg-options`` overrides merged in, each checked for typos
    (:func:`rcnn_plugins.config_utils.load_config`)."""
    return config_utils.load_config(path, cfg_options)


def build_test_dataset(cfg: Config):
    """The config's test dataset (``test_dataloader.dataset``), giving classes and ground truth."""
    config_utils.enter_default_scope(cfg)
    return DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))


def test_metric_cfgs(cfg: Config) -> List[dict]:
    """The config's ``test_evaluator`` metrics, less the ``DumpResults`` that ``--out`` adds."""
    metrics = cfg.test_evaluator
    metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    return [copy.deepcopy(m) for m in metrics if m.get('type') != 'DumpResults']


def build_evaluator(cfg: Config, dataset, metrics: Optional[List[dict]] = None) -> Evaluator:
    """An ``Evaluator`` of the config's test metrics (or ``metrics``) with the dataset's classes."""
    config_utils.enter_default_scope(cfg)
    evaluator = Evaluator(metrics if metrics is not None else test_metric_cfgs(cfg))
    evaluator.dataset_meta = dataset.metainfo
    return evaluator


def evaluate_results(cfg: Config, results: Sequence[dict], dataset=None,
                     evaluator: Optional[Evaluator] = None) -> dict:
    """Metrics of ``results`` (``tools/test.py --out`` dicts, in the dataset's order).

    Args:
        cfg: the config the results were made with (its ``test_evaluator`` and test dataset).
        results: one dict per image with ``pred_instances``, ``img_id``, ``ori_shape``.
        dataset: the test dataset, if already built (its ``metainfo`` names the classes).
        evaluator: an evaluator to use instead of one built from the config's ``test_evaluator``.

    Returns the metrics dict ``tools/test.py`` prints (``coco/bbox_mAP``, ...).
    """
    dataset = dataset if dataset is not None else build_test_dataset(cfg)
    if len(results) != len(dataset):
        raise ValueError(f'{len(results)} results for a test set of {len(dataset)} images: evaluate the '
                         f'results with the config (and --cfg-options) they were made with')
    evaluator = evaluator if evaluator is not None else build_evaluator(cfg, dataset)
    return evaluator.offline_evaluate(list(results), chunk_size=64)
