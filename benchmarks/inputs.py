"""The benchmark's inputs: one fixed-seed batch, seen by each model in its own convention.

Ours receives the uint8 BGR image (its preprocessor does ``bgr_to_rgb``), torchvision the same
pixels as RGB; each model's own uint8->float conversion, normalisation and padding to 32 is
inside the timed region.
"""
import torch


def parse_size(s):
    """``'800x1333'`` (or a pair) -> ``(800, 1333)`` (height, width)."""
    if isinstance(s, (tuple, list)):
        return tuple(int(v) for v in s)
    h, w = s.lower().split('x')
    return int(h), int(w)


def make_batch(batch, size, num_gts=8, num_classes=80, seed=0):
    """Fixed-seed smooth random uint8 RGB images (3, H, W) and random gt boxes/labels per image."""
    h, w = size
    g = torch.Generator().manual_seed(seed)
    images, boxes, labels = [], [], []
    for _ in range(batch):
        # Low-frequency colour blobs plus fine noise: closer to a photo than white noise.
        coarse = torch.rand(1, 3, max(h // 32, 2), max(w // 32, 2), generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode='bilinear', align_corners=False)[0]
        img = (img * 200 + torch.rand(3, h, w, generator=g) * 55).clamp(0, 255).to(torch.uint8)
        images.append(img)
        # Boxes of 2%..50% of the image side, fully inside the image.
        bw = (torch.rand(num_gts, generator=g) * 0.48 + 0.02) * w
        bh = (torch.rand(num_gts, generator=g) * 0.48 + 0.02) * h
        x1 = torch.rand(num_gts, generator=g) * (w - bw)
        y1 = torch.rand(num_gts, generator=g) * (h - bh)
        boxes.append(torch.stack([x1, y1, x1 + bw, y1 + bh], 1))
        labels.append(torch.randint(0, num_classes, (num_gts,), generator=g))
    return dict(images=images, boxes=boxes, labels=labels, size=size)


def ours_data(batch):
    """Fresh input dict for our detector (the model writes predictions into the samples)."""
    from mmengine.structures import InstanceData

    from rcnn_plugins.structures import DetDataSample
    h, w = batch['size']
    samples = []
    for i, (b, labels) in enumerate(zip(batch['boxes'], batch['labels'])):
        s = DetDataSample(metainfo=dict(img_id=i, img_path=f'bench_{i}.jpg', ori_shape=(h, w), img_shape=(h, w),
                                        scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
        s.gt_instances = InstanceData(bboxes=b.clone(), labels=labels.clone())
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    # The config's preprocessor converts BGR -> RGB, so hand it BGR pixels of the same image.
    return dict(inputs=[img.flip(0).contiguous() for img in batch['images']], data_samples=samples)


def tv_data(batch):
    targets = [dict(boxes=b.clone(), labels=labels + 1) for b, labels in zip(batch['boxes'], batch['labels'])]
    return dict(images=list(batch['images']), targets=targets)


# --------------------------------------------------------------------------------------------
