"""unknown_type_hint: MMDetection types we lack are named as such (no look-alike suggestion),
typos get spelling variants only; the MMDetection list is read from its source by the generator."""
import importlib.util
import os
import os.path as osp

import pytest

from rcnn_plugins.registry import DATASETS, MODELS, TRANSFORMS, mmdet_only_names
from repo_paths import REPO_ROOT

# MMDetection's source: $MMDET_SRC, else an installed mmdet (found, not imported).
_SPEC = importlib.util.find_spec('mmdet')
MMDET_SRC = os.environ.get('MMDET_SRC') or (osp.dirname(_SPEC.origin) if _SPEC and _SPEC.origin else '')


def build_error(registry, type_name):
    with pytest.raises(KeyError) as info:
        registry.build(dict(type=type_name))
    return str(info.value.args[0])


@pytest.mark.parametrize('name', ['MaskRCNN', 'RetinaNet', 'DETR', 'DINO', 'FCNMaskHead', 'an mmcv.ops layer'])
def test_mmdet_type_we_lack_is_named_without_lookalike(name):
    if name == 'an mmcv.ops layer':  # whichever compiled-op layer is still missing when the test runs
        from rcnn_plugins.registry import _MMCV_OPS_MODELS
        missing = [n for n in _MMCV_OPS_MODELS if n in mmdet_only_names('model')]
        if not missing:
            pytest.skip('every mmcv.ops layer of the list is registered here now')
        name = missing[0]
    if name in MODELS.module_dict:
        pytest.skip(f'{name} is registered here now')
    message = build_error(MODELS, name)
    assert 'that rcnn_plugins does not have' in message and 'docs/MMDET_DIFFERENCES.md' in message
    assert 'did you mean' not in message


def test_lookalikes_are_never_suggested_for_a_real_mmdet_name():
    # Before: GIoULoss -> 'L1Loss' (a different loss), ResNeXt -> 'ResNet' (then a raw TypeError).
    # Each MMDetection name below is one we lack whose registered look-alike a fuzzy matcher would
    # offer (difflib ranks it first): MaskRCNN -> FasterRCNN, RetinaNet -> ResNet, ...
    # Whatever is registered here when the test runs: either it builds, or it is named as missing.
    pairs = [('MaskRCNN', 'FasterRCNN'), ('RetinaNet', 'ResNet'), ('CascadeRPNHead', 'CascadeRoIHead'),
             ('SABLHead', 'BBoxHead')]
    checked = 0
    for name, lookalike in pairs:
        if name in MODELS.module_dict:
            continue  # added by now: found, not refused
        assert lookalike in MODELS.module_dict  # the tempting wrong answer exists
        message = build_error(MODELS, name)
        assert 'that rcnn_plugins does not have' in message and lookalike not in message
        assert name in mmdet_only_names('model')
        checked += 1
    if not checked:
        pytest.skip('every name of the list is registered here now: pick MMDetection types still missing')


def test_registered_names_drop_out_of_the_missing_list():
    assert 'FasterRCNN' not in mmdet_only_names('model') and 'RPNHead' not in mmdet_only_names('model')
    assert 'CocoDataset' not in mmdet_only_names('dataset')
    assert 'Mosaic' in mmdet_only_names('transform')

    @MODELS.register_module(name='RetinaNet', force=True)
    class Fake:  # noqa: D401 - a stand-in registered for this test only
        def __init__(self):
            pass
    try:
        assert 'RetinaNet' not in mmdet_only_names('model')
        assert isinstance(MODELS.build(dict(type='RetinaNet')), Fake)
    finally:
        MODELS.module_dict.pop('RetinaNet')
    assert 'RetinaNet' in mmdet_only_names('model')


def test_typos_get_spelling_variants_only():
    assert "did you mean 'FasterRCNN'?" in build_error(MODELS, 'fasterrcnn')   # case: only that name
    assert "did you mean 'FasterRCNN'?" in build_error(MODELS, 'FasterRCN')    # one edit
    assert "did you mean 'Resize'" in build_error(TRANSFORMS, 'Resise')
    # A spelling of an MMDetection name we lack (chosen when the test runs: others get added here).
    lacking = next(n for n in mmdet_only_names('model') if n.lower() != n and n.lower() not in
                   {m.lower() for m in MODELS.module_dict})
    message = build_error(MODELS, lacking.lower())
    assert f"did you mean {lacking!r} (an MMDetection type rcnn_plugins does not have)?" in message
    message = build_error(MODELS, 'CompletelyUnknownThing')
    assert 'did you mean' not in message and 'registered names' in message
    assert 'is a dataset of MMDetection 3.3' in build_error(DATASETS, 'LVISV1Dataset')


@pytest.mark.skipif(not osp.isdir(MMDET_SRC), reason='MMDetection source not found (set MMDET_SRC=<mmdet package folder>)')
def test_generated_list_matches_mmdet_source(tmp_path):
    import subprocess
    import sys
    out = tmp_path / 'names.py'
    tool = osp.join(REPO_ROOT, 'tools', 'misc', 'gen_mmdet_type_names.py')
    subprocess.run([sys.executable, tool, MMDET_SRC, '--out', str(out)], check=True, capture_output=True)
    from rcnn_plugins.mmdet_type_names import MMDET_TYPE_NAMES
    scope = {}
    exec(out.read_text(), scope)
    assert scope['MMDET_TYPE_NAMES'] == MMDET_TYPE_NAMES
    # Spot checks of both registration forms (decorator, and register_module(name=..., module=...)).
    assert 'GIoULoss' in MMDET_TYPE_NAMES['model'] and 'SiLU' in MMDET_TYPE_NAMES['model']
    assert 'LVISDataset' in MMDET_TYPE_NAMES['dataset'] and 'ClassAwareSampler' in MMDET_TYPE_NAMES['data sampler']


def test_config_type_check_knows_non_registry_types():
    """`type` values that heads read themselves (not registry names) pass the runner's early check;
    a real unknown type under the same parent still fails, naming its path."""
    import rcnn_plugins.models  # noqa: F401  (registers the model types)
    from rcnn_plugins.registry import check_config_types
    neck = dict(type='FPG', same_up_trans=dict(type='conv', kernel_size=3), output_trans=dict(type='last_conv'),
                across_down_trans=dict(type='interpolation_conv'))
    head = dict(type='StageCascadeRPNHead', adapt_cfg=dict(type='dilation', dilation=3),
                nms=dict(type='soft_nms'))
    check_config_types(dict(model=dict(type='RPN', neck=neck, rpn_head=head)))
    with pytest.raises(KeyError, match=r'model\.rpn_head\.loss_cls'):
        check_config_types(dict(model=dict(type='RPN', neck=neck, rpn_head=dict(head, loss_cls=dict(type='conv')))))
