"""FLOPs and parameters of a config's detector at one input size, next to torchvision's Faster R-CNN.

    python tools/analysis_tools/get_flops.py CONFIG [--shape 800 1333] [--cfg-options k=v ...]

Counts come from mmengine.analysis (one FLOP = one multiply-add; see rcnn_plugins/analysis/flops.py
for what is and is not counted). Both models run with random weights on the same (H, W) image.
"""
import argparse

from mmengine.config import DictAction

from rcnn_plugins.analysis import (build_random_detector, complexity_table, detector_flops, load_config,
                                   torchvision_flops)
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count FLOPs and parameters')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[800, 1333], help='input H W (or one side)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit('--shape takes H W or a single side')
    shape = (args.shape[0], args.shape[-1])
    model = build_random_detector(load_config(args.config, args.cfg_options))
    columns = {'ours': detector_flops(model, shape), 'torchvision fasterrcnn_resnet50_fpn': torchvision_flops(shape)}
    print(f'Input shape: {shape[0]}x{shape[1]} (1 image)')
    print(complexity_table(columns))
    print('One FLOP = one multiply-add (mmengine.analysis); NMS, RoIAlign and element-wise ops are not counted.')
    return columns


if __name__ == '__main__':
    main()
