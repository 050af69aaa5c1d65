# The paper's Faster R-CNN (VGG-16) trained on VOC 2007 trainval + VOC 2012 trainval ("07+12",
# 16,551 images), tested on VOC 2007 test; same model and schedule as faster-rcnn_vgg16_voc07.py.
#
# Target: 73.2 % mAP on VOC 2007 test (Ren et al. 2015, Table 3: RPN + VGG-16, "07+12"), the number
# this config is meant to reproduce on a GPU.
_base_ = './faster-rcnn_vgg16_voc07.py'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        # VOC2007 and VOC2012 metainfo differ only in 'dataset_type'.
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                type={{_base_.dataset_type}},
                data_root={{_base_.data_root}},
                ann_file='VOC2007/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2007/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline={{_base_.train_pipeline}}),
            dict(
                type={{_base_.dataset_type}},
                data_root={{_base_.data_root}},
                ann_file='VOC2012/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2012/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline={{_base_.train_pipeline}}),
        ]))
