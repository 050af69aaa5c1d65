# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with online hard example mining (Shrivastava et al.,
# 2016) in the RoI head: of each image's candidate RoIs, the 512 (up to 25 % foreground) with the
# highest current classification loss are trained on, instead of a random 512. As MMDetection's
# configs/faster_rcnn/faster-rcnn_r50_fpn_ohem_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(train_cfg=dict(rcnn=dict(sampler=dict(type='OHEMSampler'))))
