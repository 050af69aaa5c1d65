"""``DSDLDetDataset`` resolves as a type name (MMDetection's DSDL configs load) but refuses to build, with
one error that names the package and the fix."""
import pytest
from mmengine.registry import init_default_scope

from rcnn_plugins.datasets import DatasetError
from rcnn_plugins.registry import DATASETS


def test_dsdl_dataset_is_registered_and_refuses_with_the_fix(tmp_path):
    init_default_scope('rcnn_plugins')
    assert DATASETS.get('DSDLDetDataset') is not None
    cfg = dict(type='DSDLDetDataset', data_root=str(tmp_path), ann_file='set-train/train.yaml',
               data_prefix=dict(img_path='./'), filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[])
    with pytest.raises(DatasetError) as err:
        DATASETS.build(cfg)
    msg = str(err.value)
    assert 'set-train/train.yaml' in msg and '`dsdl` package' in msg and 'CocoDataset' in msg
