"""Generate the demo detection dataset: coloured shapes on textured backgrounds, COCO format.

    python tools/make_demo_data.py [--out data/demo] [--seed 0] [--num-train 320] [--num-val 80]

Writes ``OUT/train/*.png``, ``OUT/val/*.png`` and ``OUT/annotations/{train,val}.json``. Four classes
(rectangle, ellipse, triangle, cross) in random colours, so the detector has to learn shape, not
colour; 16-72 px objects, 0-4 per image (some images have none), on noisy gradient backgrounds.
The output depends only on the arguments: the same seed gives the same bytes.
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np

CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross')


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour gradient plus blotches and pixel noise (uint8, HxWx3)."""
    corners = rng.uniform(40, 215, size=(2, 2, 3)).astype(np.float32)
    img = cv2.resize(corners, (w, h), interpolation=cv2.INTER_LINEAR)
    blotches = rng.normal(0, 25, size=(h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    img += cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC)
    return img


def _contrasting_colour(rng: np.random.Generator, local_mean: np.ndarray) -> np.ndarray:
    """A random colour that differs from the background under the object by a visible margin."""
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - local_mean).sum() > 150:
            return colour


def _draw(img: np.ndarray, label: int, x1: int, y1: int, w: int, h: int, colour) -> None:
    colour = tuple(float(c) for c in colour)
    x2, y2 = x1 + w - 1, y1 + h - 1
    if CLASSES[label] == 'rectangle':
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thickness=-1)
    elif CLASSES[label] == 'ellipse':
        centre = ((x1 + x2) // 2, (y1 + y2) // 2)
        cv2.ellipse(img, centre, ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, colour, thickness=-1)
    elif CLASSES[label] == 'triangle':
        pts = np.array([[(x1 + x2) // 2, y1], [x2, y2], [x1, y2]], dtype=np.int32)
        cv2.fillPoly(img, [pts], colour)
    else:  # cross: a plus sign whose arms are a third of the box wide
        tw, th = max(w // 3, 2), max(h // 3, 2)
        cx, cy = x1 + (w - tw) // 2, y1 + (h - th) // 2
        cv2.rectangle(img, (cx, y1), (cx + tw - 1, y2), colour, thickness=-1)
        cv2.rectangle(img, (x1, cy), (x2, cy + th - 1), colour, thickness=-1)


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def make_image(rng: np.random.Generator, min_size: int, max_size: int, min_obj: int, max_obj: int):
    """One image and its boxes: (uint8 HxWx3 BGR, [(label, [x, y, w, h]), ...])."""
    h, w = (int(v) for v in rng.choice(np.arange(min_size, max_size + 1, 16), size=2))
    img = _background(rng, h, w)
    # 0-4 objects; about 1 image in 10 has none.
    num = int(rng.choice(5, p=[0.1, 0.3, 0.25, 0.2, 0.15]))
    objects = []
    for _ in range(num):
        for _attempt in range(20):  # reject heavy overlaps: each object stays recognisable
            side = rng.uniform(min_obj, max(min_obj, min(max_obj, 0.6 * min(h, w))))
            aspect = rng.uniform(0.6, 1.6)
            bw = int(np.clip(side * np.sqrt(aspect), min_obj, w - 2))
            bh = int(np.clip(side / np.sqrt(aspect), min_obj, h - 2))
            x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            box = [x1, y1, bw, bh]
            if all(_iou(box, other) < 0.2 for _, other in objects):
                break
        else:
            continue
        label = int(rng.integers(len(CLASSES)))
        local_mean = img[y1:y1 + bh, x1:x1 + bw].reshape(-1, 3).mean(0)
        _draw(img, label, x1, y1, bw, bh, _contrasting_colour(rng, local_mean))
        objects.append((label, box))
    img += rng.normal(0, 12, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), objects


def make_split(out: str, split: str, num_images: int, rng: np.random.Generator,
               min_size: int, max_size: int, min_obj: int, max_obj: int) -> dict:
    os.makedirs(osp.join(out, split), exist_ok=True)
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        img, objects = make_image(rng, min_size, max_size, min_obj, max_obj)
        file_name = f'{img_id:05d}.png'
        cv2.imwrite(osp.join(out, split, file_name), img)
        images.append(dict(id=img_id, file_name=file_name, height=img.shape[0], width=img.shape[1]))
        for label, (x, y, bw, bh) in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=label + 1,
                                    bbox=[x, y, bw, bh], area=bw * bh, iscrowd=0))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    with open(osp.join(out, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/demo', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=320)
    parser.add_argument('--num-val', type=int, default=80)
    parser.add_argument('--min-size', type=int, default=128, help='smallest image side (px)')
    parser.add_argument('--max-size', type=int, default=176, help='largest image side (px)')
    parser.add_argument('--min-obj', type=int, default=16, help='smallest object side (px)')
    parser.add_argument('--max-obj', type=int, default=72, help='largest object side (px)')
    args = parser.parse_args(argv)

    # One stream per split, so changing --num-train does not change the val images.
    train_rng, val_rng = (np.random.default_rng([args.seed, i]) for i in range(2))
    for split, num, rng in (('train', args.num_train, train_rng), ('val', args.num_val, val_rng)):
        coco = make_split(args.out, split, num, rng, args.min_size, args.max_size,
                          args.min_obj, args.max_obj)
        print(f'{split}: {len(coco["images"])} images, {len(coco["annotations"])} boxes '
              f'-> {osp.join(args.out, split)}')


if __name__ == '__main__':
    main()
