"""Time COCO evaluation with both ``CocoMetric`` backends on a synthetic COCO-sized case.

    python tools/benchmark_eval.py [--images 5000] [--dets 100] [--json out.json]

Logic: :mod:`benchmarks.coco_eval`. Prints seconds per backend and checks that the
metrics are equal.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/ is not installed

from benchmarks.coco_eval import time_backends  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--dets', type=int, default=100, help='detections per image')
    parser.add_argument('--json', help='also write the result here')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = time_backends(tmp, args.images, args.dets)
    secs = result['seconds']
    print(f"speed-up: x{secs['pycocotools'] / secs['faster_coco_eval']:.1f}; "
          f"metrics equal: {result['equal']}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    if not result['equal']:
        raise SystemExit('the backends disagree')


if __name__ == '__main__':
    main()
