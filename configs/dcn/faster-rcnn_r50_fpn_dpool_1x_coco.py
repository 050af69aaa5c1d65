# Faster R-CNN R50-FPN with deformable RoI pooling (mmcv's DeformRoIPoolPack layout, pure PyTorch
# here): each RoI's 7x7 bins are shifted by offsets an fc stack predicts from a plain pooling pass.
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(_delete_=True, type='DeformRoIPoolPack', output_size=7, output_channels=256),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32])))
