"""RPN proposals of a dataset: ``python tools/misc/gen_proposals.py CONFIG CHECKPOINT --out proposals.pkl [--split train]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.gen_proposals`.
"""
from rcnn_plugins.cli.gen_proposals import gen_proposals_main

if __name__ == '__main__':
    gen_proposals_main()
