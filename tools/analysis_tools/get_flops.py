"""FLOPs and parameters of a config's detector at one input size, next to torchvision's Faster R-CNN.

    python tools/analysis_tools/get_flops.py CONFIG [--shape 800 1333] [--cfg-options k=v ...]

Counts come from mmengine.analysis (one FLOP = one multiply-add; see rcnn_plugins/analysis/flops.py
for what is and is not counted). Both models run with random weights on the same (H, W) image.
"""
import argparse

from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from rcnn_plugins.analysis import complexity_table, detector_flops, load_config, torchvision_flops
from rcnn_plugins.registry import MODELS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count FLOPs and parameters')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[800, 1333], help='input H W (or one side)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit('--shape takes H W or a single side')
    shape = (args.shape[0], args.shape[-1])
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'rcnn_plugins'))
    cfg.model.get('backbone', {}).pop('init_cfg', None)   # random weights: nothing to load
    model = MODELS.build(cfg.model)
    columns = {'ours': detector_flops(model, shape), 'torchvision fasterrcnn_resnet50_fpn': torchvision_flops(shape)}
    print(f'Input shape: {shape[0]}x{shape[1]} (1 image)')
    print(complexity_table(columns))
    print('One FLOP = one multiply-add (mmengine.analysis); NMS, RoIAlign and element-wise ops are not counted.')
    return columns


if __name__ == '__main__':
    main()
