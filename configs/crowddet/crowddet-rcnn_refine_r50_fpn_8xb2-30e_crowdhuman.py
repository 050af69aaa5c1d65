# CrowdDet with the refine module: each instance's prediction (deltas and person score) is fed back
# with the shared RoI features to a second predictor, trained with its own EMD loss
# (loss_rcnn_emd_ref) and used at test time. As MMDetection's
# configs/crowddet/crowddet-rcnn_refine_r50_fpn_8xb2-30e_crowdhuman.py.
_base_ = './crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman.py'

model = dict(roi_head=dict(bbox_head=dict(with_refine=True)))
