"""Run an exported ONNX detector with onnxruntime on an image and print / write its detections.

``python tools/deployment/run_onnx.py model.onnx IMAGE [--config CONFIG] [--score-thr 0.3] [--out dets.json]
[--show out.jpg]``

Preprocessing (resize, normalisation, padding) comes from the file's metadata (written by
``tools/deployment/export.py``) or from ``--config``; boxes are printed in pixels of IMAGE.
"""
import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='.onnx file')
    parser.add_argument('image')
    parser.add_argument('--config', default=None, help='config the model was exported from (default: the metadata)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--threads', type=int, default=None, help='onnxruntime intra-op threads')
    parser.add_argument('--out', default=None, help='write the detections here (JSON)')
    parser.add_argument('--show', default=None, help='write the image with the boxes drawn here')
    args = parser.parse_args(argv)
    from rcnn_plugins.deployment.export import ONNXDetector, draw_detections
    try:
        detector = ONNXDetector(args.model, args.config, threads=args.threads)
        result = detector(args.image, score_thr=args.score_thr)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    records = [dict(label=int(l), score=round(float(s), 5), bbox=[round(float(v), 2) for v in b])
               for b, s, l in zip(result['bboxes'], result['scores'], result['labels'])]
    for rec, name in zip(records, result.get('classes') or [None] * len(records)):
        if name is not None:
            rec['class'] = name
        print(json.dumps(rec))
    print(f'{len(records)} detections with score > {args.score_thr}', file=sys.stderr)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(records, f, indent=1)
    if args.show:
        draw_detections(args.image, result, args.show, detector.classes)
        print(f'wrote {args.show}', file=sys.stderr)


if __name__ == '__main__':
    main()
