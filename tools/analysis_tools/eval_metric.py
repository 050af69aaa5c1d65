"""Evaluate saved test predictions with a config's test metrics, without the model.

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis_tools/eval_metric.py CONFIG results.pkl [--cfg-options test_evaluator.classwise=True]
"""
import argparse
import json

from mmengine.config import DictAction

from rcnn_plugins.analysis import evaluate_results, load_config, load_results
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate saved detections')
    parser.add_argument('config', help='the config the results were made with')
    parser.add_argument('pkl_results', help='results.pkl from tools/test.py --out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. test_evaluator.classwise=True')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    metrics = evaluate_results(cfg, load_results(args.pkl_results))
    print(json.dumps(metrics, indent=1))
    return metrics


if __name__ == '__main__':
    main()
