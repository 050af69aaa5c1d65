"""Component contracts: every class registered from a component folder satisfies its folder's
protocol (checked on methods and signatures), the checker itself catches broken classes, and
constructors accept built instances as well as configs (``build_or_use``)."""
import copy

import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.protocols import FOLDER_PROTOCOLS, protocol_violations, registry_violations
from rcnn_plugins.models.roi_heads import Shared2FCBBoxHead, SingleRoIExtractor, StandardRoIHead
from rcnn_plugins.models.task_modules import MaxIoUAssigner, RandomSampler
from rcnn_plugins.models.task_modules.assigners.protocol import Assigner
from rcnn_plugins.models.task_modules.coders.protocol import BBoxCoder
from rcnn_plugins.registry import MODELS, TASK_UTILS, build_or_use
from rcnn_plugins.structures import DetDataSample


def test_every_registered_component_satisfies_its_folders_protocol():
    assert registry_violations(TASK_UTILS) == {}
    assert registry_violations(MODELS) == {}


def test_the_check_covers_every_component_folder():
    # Each folder of FOLDER_PROTOCOLS holds at least one registered class: a renamed folder
    # would otherwise silently check nothing.
    classes = list(TASK_UTILS.module_dict.values()) + list(MODELS.module_dict.values())
    for prefix in FOLDER_PROTOCOLS:
        assert any(getattr(c, '__module__', '').startswith(prefix) for c in classes), prefix


def test_checker_reports_missing_methods_and_incompatible_signatures():
    class NoDecode:
        def encode(self, bboxes, gt_bboxes):
            return gt_bboxes

    class ExtraRequiredArg:
        def encode(self, bboxes, gt_bboxes, stride):
            return gt_bboxes

        def decode(self, bboxes, pred_bboxes, **kwargs):
            return pred_bboxes

    class RenamedArg:
        def assign(self, priors, gt_instances, gt_instances_ignore=None):
            return None

    class Good:
        def encode(self, bboxes, gt_bboxes):
            return gt_bboxes

        def decode(self, bboxes, pred_bboxes, max_shape=None, wh_ratio_clip=0.016):
            return pred_bboxes

    assert protocol_violations(NoDecode, BBoxCoder) == ['decode() is missing']
    assert protocol_violations(ExtraRequiredArg, BBoxCoder) == [
        "encode(): requires parameter 'stride' that the protocol does not pass"]
    assert protocol_violations(RenamedArg, Assigner) == [
        "assign(): has no parameter 'pred_instances'",
        "assign(): requires parameter 'priors' that the protocol does not pass"]
    # decode(max_shape=...) is passed by keyword and absorbed by **kwargs in the protocol.
    assert protocol_violations(Good, BBoxCoder) == []


def test_build_or_use_builds_configs_and_passes_instances_through():
    sampler = RandomSampler(num=8, pos_fraction=0.5)
    assert build_or_use(TASK_UTILS, sampler) is sampler
    assert build_or_use(TASK_UTILS, None) is None
    built = build_or_use(TASK_UTILS, dict(type='RandomSampler', num=8, pos_fraction=0.5))
    assert isinstance(built, RandomSampler) and built.num == 8


class HalfIoUAssigner(MaxIoUAssigner):
    """An unregistered component: usable only as an instance."""


def _sample(h=64, w=64):
    s = DetDataSample(metainfo=dict(img_shape=(h, w), scale_factor=(1., 1.)))
    s.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 30., 30.]]), labels=torch.tensor([1]))
    return s


def test_roi_head_from_instances_equals_the_config_built_one():
    extractor_cfg = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                         out_channels=4, featmap_strides=[4, 8])
    head_cfg = dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, num_classes=3)
    train_cfg = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
                     sampler=dict(type='RandomSampler', num=16, pos_fraction=0.25))
    test_cfg = dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)
    torch.manual_seed(0)
    from_cfg = StandardRoIHead(copy.deepcopy(extractor_cfg), copy.deepcopy(head_cfg), train_cfg, test_cfg)
    inst_train = dict(assigner=HalfIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
                      sampler=RandomSampler(num=16, pos_fraction=0.25))
    torch.manual_seed(1)
    from_inst = StandardRoIHead(SingleRoIExtractor(**{k: v for k, v in extractor_cfg.items() if k != 'type'}),
                                Shared2FCBBoxHead(in_channels=4, fc_out_channels=16, num_classes=3),
                                inst_train, test_cfg)
    assert isinstance(from_inst.bbox_assigner, HalfIoUAssigner)
    assert from_inst.bbox_sampler is inst_train['sampler']
    from_inst.load_state_dict(from_cfg.state_dict())

    feats = [torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8)]
    proposals = [InstanceData(bboxes=torch.tensor([[2., 2., 28., 28.], [30., 30., 60., 60.], [0., 0., 10., 12.]]))]
    torch.manual_seed(2)
    loss_a = from_cfg.loss(feats, proposals, [_sample()])
    torch.manual_seed(2)
    loss_b = from_inst.loss(feats, proposals, [_sample()])
    for k in ('loss_cls', 'loss_bbox'):
        torch.testing.assert_close(loss_a[k], loss_b[k])
    from_cfg.eval()
    from_inst.eval()
    det_a = from_cfg.predict(feats, proposals, [_sample()])[0]
    det_b = from_inst.predict(feats, proposals, [_sample()])[0]
    torch.testing.assert_close(det_a.bboxes, det_b.bboxes)
    torch.testing.assert_close(det_a.scores, det_b.scores)
