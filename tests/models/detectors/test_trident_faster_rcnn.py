"""TridentNet's detector and RoI head: the branches' detections merged per image by hand; with
identical branches the trident detector equals a plain Faster R-CNN on the same weights (losses on
the thrice-repeated batch, detections after merging)."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.backbones import ResNet
from rcnn_plugins.models.detectors import FasterRCNN, TridentFasterRCNN
from rcnn_plugins.models.roi_heads import TridentRoIHead
from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample

TEST_CFG = dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=3)
EXTRACTOR = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
                 out_channels=32, featmap_strides=[16])
HEAD = dict(type='Shared2FCBBoxHead', in_channels=32, fc_out_channels=32, num_classes=3)


@MODELS.register_module(name='IdenticalBranchesResNet', force=True)
class IdenticalBranchesResNet(ResNet):
    """Stands in for TridentResNet: every branch is the plain ResNet (branch-major batch stacking)."""

    def __init__(self, num_branch=3, test_branch_idx=-1, **kwargs):
        super().__init__(**kwargs)
        self.num_branch, self.test_branch_idx = num_branch, test_branch_idx

    def forward(self, x):
        n = self.num_branch if self.training or self.test_branch_idx == -1 else 1
        return tuple(torch.cat([f] * n) for f in super().forward(x))


def test_merge_trident_bboxes_by_hand():
    head = TridentRoIHead(num_branch=2, test_branch_idx=-1, bbox_roi_extractor=EXTRACTOR, bbox_head=HEAD,
                          test_cfg=TEST_CFG)
    b0 = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]), scores=torch.tensor([.9, .4]),
                      labels=torch.tensor([0, 1]))
    b1 = InstanceData(bboxes=torch.tensor([[1., 1., 11., 11.], [0., 0., 10., 10.], [80., 80., 90., 90.],
                                           [20., 20., 30., 30.]]),
                      scores=torch.tensor([.8, .7, .6, .3]), labels=torch.tensor([0, 2, 1, 1]))
    out = head.merge_trident_bboxes([b0, b1])
    # [1,1,11,11] (label 0, IoU .68 with the .9 box) is suppressed; the label-2 copy survives (class-wise);
    # sorted by score and cut to max_per_img=3.
    assert out.scores.tolist() == pytest.approx([.9, .7, .6])
    assert out.labels.tolist() == [0, 2, 1]
    assert out.bboxes.tolist() == [[0., 0., 10., 10.], [0., 0., 10., 10.], [80., 80., 90., 90.]]


def detector_cfg(trident):
    backbone = dict(type='ResNet', depth=18, base_channels=8, num_stages=3, out_indices=(2,), strides=(1, 2, 2),
                    norm_eval=False, init_cfg=None)
    roi = dict(type='StandardRoIHead', bbox_roi_extractor=EXTRACTOR, bbox_head=HEAD)
    if trident:
        backbone.update(type='IdenticalBranchesResNet', num_branch=3, test_branch_idx=-1)
        roi.update(type='TridentRoIHead', num_branch=3, test_branch_idx=-1)
    return dict(
        backbone=backbone,
        rpn_head=dict(type='RPNHead', in_channels=32, feat_channels=32,
                      anchor_generator=dict(type='AnchorGenerator', scales=[2, 4], ratios=[1.0], strides=[16])),
        roi_head=roi,
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
                     sampler=dict(type='RandomSampler', num=32, pos_fraction=0.5, add_gt_as_proposals=False)),
            rpn_proposal=dict(nms_pre=100, max_per_img=30, nms=dict(type='nms', iou_threshold=0.7)),
            rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                    match_low_quality=False),
                      sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25))),
        test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=30, nms=dict(type='nms', iou_threshold=0.7)),
                      rcnn=TEST_CFG))


def samples(n=2):
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(96, 96), scale_factor=(1., 1.), batch_input_shape=(96, 96)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[10. + i, 12., 50., 60.], [40., 30., 90., 80.]]),
                                      labels=torch.tensor([0, 2]))
        out.append(s)
    return out


def test_identical_branches_equal_plain_faster_rcnn():
    torch.manual_seed(0)
    plain = FasterRCNN(**detector_cfg(False))
    trident = TridentFasterRCNN(**detector_cfg(True))
    trident.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 96, 96)
    plain.train(), trident.train()
    torch.manual_seed(1)
    ref = plain.loss(torch.cat([x] * 3), samples() * 3)  # the batch the trident heads see
    torch.manual_seed(1)
    out = trident.loss(x, samples())
    assert set(out) == set(ref)
    for k in ('loss_cls', 'loss_bbox', 'acc'):
        assert torch.allclose(out[k], ref[k]), k
    plain.eval(), trident.eval()
    with torch.no_grad():
        ref = plain.predict(x, samples())
        out = trident.predict(x, samples())
    assert len(out) == 2
    for a, b in zip(out, ref):  # three identical copies merge back into one
        # atol: the convs run on a batch of 6 instead of 2 (other kernel blocking, ~1e-4 px).
        assert torch.allclose(a.pred_instances.bboxes, b.pred_instances.bboxes, atol=1e-3)
        assert torch.allclose(a.pred_instances.scores, b.pred_instances.scores, atol=1e-5)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)


def test_backbone_and_head_must_agree():
    cfg = detector_cfg(True)
    cfg['roi_head'].update(test_branch_idx=1)
    with pytest.raises(ValueError, match='same num_branch and test_branch_idx'):
        TridentFasterRCNN(**cfg)
