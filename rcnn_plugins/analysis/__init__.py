"""Analysis of a detector after training: training logs, saved predictions (re-evaluation,
confusion matrix, precision-recall curves), the training pipeline's output and FLOPs.

The logic behind ``tools/analysis_tools/*.py``; every function works from Python too.
"""
from .browse import browse_dataset
from .confusion_matrix import calculate_confusion_matrix, plot_confusion_matrix
from .evaluate import build_evaluator, build_test_dataset, evaluate_results, load_config
from .flops import build_random_detector, complexity_table, detector_flops, torchvision_flops
from .logs import cal_train_time, default_curve_keys, load_json_log, plot_curve
from .pr_curve import coco_pr_curves, plot_pr_curves
from .results_io import load_results

__all__ = ['browse_dataset', 'build_evaluator', 'build_random_detector', 'build_test_dataset',
           'cal_train_time', 'calculate_confusion_matrix', 'default_curve_keys', 'coco_pr_curves', 'complexity_table',
           'detector_flops', 'evaluate_results', 'load_config', 'load_json_log', 'load_results',
           'plot_confusion_matrix', 'plot_curve', 'plot_pr_curves', 'torchvision_flops']
