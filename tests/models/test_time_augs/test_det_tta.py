"""Test-time augmentation: views through mmcv's TestTimeAug and our transforms, flipped views
mapped back exactly, symmetric image + flip-equivariant model = the un-augmented boxes, the real
detector's merge against a merge computed here, and the tools/test.py --tta config."""
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torchvision.ops import batched_nms as tv_batched_nms

from rcnn_plugins.apis.tta import TTA_META_KEYS, default_tta_pipeline, tta_config
from rcnn_plugins.models.test_time_augs import DetTTAModel, flip_boxes
from rcnn_plugins.registry import MODELS, TRANSFORMS
from rcnn_plugins.structures import DetDataSample
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


class BrightBox(BaseModel):
    """A flip-equivariant 'detector': the bounding box of the bright pixels, in original pixels."""

    def __init__(self):
        super().__init__(data_preprocessor=MODELS.build(dict(type='DetDataPreprocessor', mean=[0, 0, 0],
                                                            std=[1, 1, 1])))

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def test_step(self, data):
        data = self.data_preprocessor(data, False)
        out = []
        for img, sample in zip(data['inputs'], data['data_samples']):
            h, w = sample.img_shape
            ys, xs = torch.nonzero(img[:, :h, :w].sum(0) > 300, as_tuple=True)
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
            fx, fy = sample.metainfo.get('scale_factor', (1.0, 1.0))
            sample.pred_instances = InstanceData(bboxes=box / torch.tensor([fx, fy, fx, fy]),
                                                 scores=torch.tensor([0.9]), labels=torch.tensor([0]))
            out.append(sample)
        return out


def Compose(cfgs):
    """A pipeline built from our registry (no default scope needed)."""
    steps = [TRANSFORMS.build(c) for c in cfgs]

    def run(results):
        for step in steps:
            results = step(results)
        return results
    return run


def views(img, transforms):
    pipeline = Compose([dict(type='LoadImageFromNDArray'), dict(type='TestTimeAug', transforms=transforms)])
    return pipeline(dict(img=img, img_id=0))


FLIPS = [[dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
         [dict(type='PackDetInputs', meta_keys=TTA_META_KEYS)]]


def test_flip_boxes_by_hand():
    b = torch.tensor([[3., 4., 10., 12.]])
    assert flip_boxes(b, (20, 30), 'horizontal').tolist() == [[20., 4., 27., 12.]]
    assert flip_boxes(b, (20, 30), 'vertical').tolist() == [[3., 8., 10., 16.]]
    assert flip_boxes(b, (20, 30), 'diagonal').tolist() == [[20., 8., 27., 16.]]
    for d in ('horizontal', 'vertical', 'diagonal'):
        assert torch.equal(flip_boxes(flip_boxes(b, (20, 30), d), (20, 30), d), b)


def test_flip_view_maps_back_exactly():
    img = np.zeros((20, 30, 3), np.uint8)
    img[4:12, 3:10] = 200                       # asymmetric: box [3, 4, 10, 12]
    data = views(img, FLIPS)
    tta = DetTTAModel(module=BrightBox(), tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
    per_view = [BrightBox().test_step(pseudo_collate([dict(inputs=data['inputs'][i],
                                                           data_samples=data['data_samples'][i])]))[0]
                for i in range(2)]
    assert per_view[0].flip and per_view[0].pred_instances.bboxes.tolist() == [[20., 4., 27., 12.]]
    # The flipped view alone, merged: mapped back to the original box exactly.
    only_flip = tta._merge_single_sample([per_view[0]])
    assert only_flip.pred_instances.bboxes.tolist() == [[3., 4., 10., 12.]]
    merged = tta.test_step(pseudo_collate([data]))[0]
    assert merged.pred_instances.bboxes.tolist() == [[3., 4., 10., 12.]]


def test_symmetric_image_gives_unaugmented_boxes():
    img = np.zeros((20, 30, 3), np.uint8)
    img[4:12, 5:25] = 200                       # symmetric about x = 15
    plain = BrightBox().test_step(pseudo_collate([Compose([
        dict(type='LoadImageFromNDArray'), dict(type='PackDetInputs')])(dict(img=img, img_id=0))]))[0]
    tta = DetTTAModel(module=BrightBox(), tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
    # Two scales x two flips: every view maps back onto the same box.
    transforms = [[dict(type='Resize', scale=(30, 20), keep_ratio=True),
                   dict(type='Resize', scale=(60, 40), keep_ratio=True)]] + FLIPS
    merged = tta.test_step(pseudo_collate([views(img, transforms)]))[0]
    assert merged.pred_instances.bboxes.tolist() == plain.pred_instances.bboxes.tolist() == [[5., 4., 25., 12.]]


def test_real_detector_merge_matches_hand_merge():
    torch.manual_seed(0)
    cfg = Config.fromfile(DEMO)
    nms = dict(type='nms', iou_threshold=0.5)
    tta = MODELS.build(dict(type='DetTTAModel', module=cfg.model, tta_cfg=dict(nms=nms, max_per_img=30))).eval()
    tta.module.roi_head.test_cfg['score_thr'] = 0.0   # random weights: keep detections to merge
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    test_pipeline = Config.fromfile(DEMO).test_dataloader.dataset.pipeline
    pipeline = Compose([dict(type='LoadImageFromNDArray')] + default_tta_pipeline(test_pipeline)[1:])
    with torch.no_grad():
        merged = tta.test_step(pseudo_collate([pipeline(dict(img=img, img_id=0))]))[0].pred_instances
        plain_pipe = Compose([dict(type='LoadImageFromNDArray')] + list(test_pipeline[1:]))
        a = tta.module.test_step(pseudo_collate([plain_pipe(dict(img=img, img_id=0))]))[0].pred_instances
        b = tta.module.test_step(pseudo_collate([plain_pipe(dict(img=img[:, ::-1].copy(), img_id=0))]))[0]
    b = b.pred_instances
    bb = b.bboxes.clone()
    bb[:, 0], bb[:, 2] = 96 - b.bboxes[:, 2], 96 - b.bboxes[:, 0]   # flip back by hand
    boxes, scores = torch.cat([b_ for b_ in (bb, a.bboxes)]), torch.cat([b.scores, a.scores])
    labels = torch.cat([b.labels, a.labels])
    assert len(boxes) > 5
    keep = tv_batched_nms(boxes, scores, labels, 0.5)[:30]
    torch.testing.assert_close(merged.bboxes, boxes[keep])
    torch.testing.assert_close(merged.scores, scores[keep])
    assert merged.labels.tolist() == labels[keep].tolist()


def test_tools_test_tta_config():
    from rcnn_plugins.cli import test_config, test_parser
    args = test_parser().parse_args([DEMO, 'ckpt.pth', '--tta'])
    cfg = test_config(args)
    assert cfg.model.type == 'DetTTAModel' and cfg.model.module.type == 'FasterRCNN'
    assert cfg.model.tta_cfg.nms == dict(type='nms', iou_threshold=0.5) and cfg.model.tta_cfg.max_per_img == 100
    tta_step = cfg.test_dataloader.dataset.pipeline[-1]
    assert tta_step['type'] == 'TestTimeAug' and tta_step['transforms'][0][0] == dict(type='RandomFlip', prob=1.)
    # A config's own tta_model / tta_pipeline are kept.
    cfg = Config.fromfile(DEMO)
    cfg.tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='soft_nms', iou_threshold=0.3),
                                                          max_per_img=5))
    cfg.tta_pipeline = ['marker']
    tta_config(cfg)
    assert cfg.model.tta_cfg.max_per_img == 5 and cfg.test_dataloader.dataset.pipeline == ['marker']


def test_fast_inference_hook_reaches_the_detector_inside_tta():
    from types import SimpleNamespace

    from rcnn_plugins.engine.hooks.fast_inference_hook import FastInferenceHook
    cfg = Config.fromfile(DEMO)
    tta = MODELS.build(dict(type='DetTTAModel', module=cfg.model)).eval()
    from mmengine.logging import MMLogger
    runner = SimpleNamespace(model=tta, logger=MMLogger.get_current_instance())
    FastInferenceHook(fuse_conv_bn=True, channels_last=True).before_test(runner)
    assert tta.module.data_preprocessor.channels_last
