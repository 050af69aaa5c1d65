"""ClassAwareSampler and ClassBalancedDataset on a CocoDataset the test writes: class frequencies
over an epoch by hand, repeat factors by hand, determinism per (seed, epoch) and the resumable
batch sampler's start batch."""
from collections import Counter

import pytest
from mmengine.registry import init_default_scope

from rcnn_plugins.datasets import ClassAwareSampler, ClassBalancedDataset, CocoDataset
from rcnn_plugins.datasets.samplers import ResumableBatchSampler
from rcnn_plugins.registry import DATA_SAMPLERS, DATASETS

# 20 images with one class each: 16 'a', 3 'b', 1 'c'.
CLASS_OF_IMAGE = ['a'] * 16 + ['b'] * 3 + ['c']


@pytest.fixture
def imbalanced(tmp_path, coco_writer):
    images = [(i + 1, f'{i}.jpg', 16, 16) for i in range(20)]
    cats = [(1, 'a'), (2, 'b'), (3, 'c')]
    anns = [dict(id=i + 1, image_id=i + 1, category_id={'a': 1, 'b': 2, 'c': 3}[c], bbox=[2, 2, 8, 8])
            for i, c in enumerate(CLASS_OF_IMAGE)]
    coco_writer(str(tmp_path), images, anns, cats)
    return dict(type='CocoDataset', data_root=str(tmp_path), ann_file='annotations/instances.json',
                data_prefix=dict(img='images/'), metainfo=dict(classes=('a', 'b', 'c')), pipeline=[])


def test_class_frequencies_over_an_epoch(imbalanced):
    dataset = DATASETS.build(imbalanced)
    by_class = {c: [i for i in range(20) if dataset.get_cat_ids(i) == [c]] for c in range(3)}
    for seed in range(5):
        sampler = DATA_SAMPLERS.build(dict(type='ClassAwareSampler'), default_args=dict(dataset=dataset, seed=seed))
        indices = list(sampler)
        assert len(indices) == len(sampler) == 20
        per_class = Counter(dataset.get_cat_ids(i)[0] for i in indices)
        # A shuffled cycle over the 3 classes: each visited 6 or 7 times in 20 draws (uniform
        # over classes, where the data has 80 % / 15 % / 5 %).
        assert sorted(per_class.values()) in ([6, 7, 7], [6, 6, 7]) and set(per_class) == {0, 1, 2}
        per_image = Counter(indices)
        # Inside a class, a shuffled cycle: 'a' (16 images) never repeats in <= 7 draws; each of
        # the 3 'b' images comes 2 or 3 times; the only 'c' image comes every 'c' visit.
        assert all(per_image[i] <= 1 for i in by_class[0])
        assert all(per_image[i] in (2, 3) for i in by_class[1])
        assert per_image[by_class[2][0]] == per_class[2]


def test_deterministic_per_seed_and_epoch_and_resumable(imbalanced):
    dataset = DATASETS.build(imbalanced)
    a, b = ClassAwareSampler(dataset, seed=3), ClassAwareSampler(dataset, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != list(b) and epoch1 == list(a)
    # Wrapped as the training loops do: starting at batch 2 gives the uninterrupted epoch's tail.
    from torch.utils.data import BatchSampler
    full = ResumableBatchSampler(BatchSampler(ClassAwareSampler(dataset, seed=3), 4, False), seed=0)
    full.set_epoch(1)
    batches = [list(x) for x in full]
    resumed = ResumableBatchSampler(BatchSampler(ClassAwareSampler(dataset, seed=3), 4, False), seed=0)
    resumed.set_epoch(1)
    resumed.start_at(2)
    assert [list(x) for x in resumed] == batches[2:]
    assert sum(batches, []) == epoch1


def test_class_balanced_dataset_repeat_factors(imbalanced):
    # f(a) = 0.8, f(b) = 0.15, f(c) = 0.05; thr 0.3: r = max(1, sqrt(0.3 / f)) = 1, 1.41, 2.45
    # -> each 'a' image once, each 'b' image ceil(1.41) = 2 times, the 'c' image 3 times.
    wrapped = ClassBalancedDataset(imbalanced, oversample_thr=0.3)
    assert isinstance(wrapped.dataset, CocoDataset)
    assert len(wrapped) == 16 + 3 * 2 + 3
    counts = Counter(wrapped.repeat_indices)
    assert [counts[i] for i in range(20)] == [1] * 16 + [2] * 3 + [3]
    # Indices map through the repeat list and the per-sample seeds reach the wrapped dataset.
    from rcnn_plugins.datasets.samplers import SeededIndices
    seen = []
    inner_getitems = wrapped.dataset.__getitems__
    wrapped.dataset.__getitems__ = lambda idx: seen.append((list(idx), idx.seeds)) or inner_getitems(idx)
    out = wrapped.__getitems__(SeededIndices([19, 24], [7, 8]))
    assert seen == [([17, 19], [7, 8])] and [o['img_id'] for o in out] == [18, 20]
    # And from a config with the registry's name, as MMDetection's configs write it.
    init_default_scope('rcnn_plugins')
    built = DATASETS.build(dict(type='ClassBalancedDataset', oversample_thr=0.3, dataset=imbalanced))
    assert type(built) is ClassBalancedDataset and len(built) == 25
