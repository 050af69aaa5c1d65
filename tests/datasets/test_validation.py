"""Bad input: every problem in rcnn_plugins.datasets.validation's table, fatal ones raise one
DatasetError naming the file and records, repaired ones give exactly one summarised warning."""
import os
import warnings

import pytest

from rcnn_plugins.datasets import CocoDataset, DatasetError, DatasetWarning, VOCDataset, XMLDataset

CATS = [(1, 'cat'), (2, 'dog')]


def build_coco(root, ann, **kwargs):
    kwargs.setdefault('metainfo', dict(classes=('cat', 'dog')))
    return CocoDataset(ann_file=ann, data_prefix=dict(img=os.path.join(root, 'images')), serialize_data=False,
                       **kwargs)


def dataset_warnings(build):
    """Build, returning (dataset, [messages of DatasetWarnings])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ds = build()
    return ds, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def test_missing_images_are_fatal_and_listed(coco_writer, tmp_path):
    images = [(i, f'{i}.jpg', 20, 20) for i in range(8)]
    anns = [dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 5, 5]) for i in range(8)]
    ann = coco_writer(str(tmp_path), images, anns, CATS)
    for i in range(1, 8):
        os.remove(tmp_path / 'images' / f'{i}.jpg')
    with pytest.raises(DatasetError) as err:
        build_coco(str(tmp_path), ann)
    msg = str(err.value)
    assert '7 image files' in msg and '1.jpg' in msg and '(7 in all)' in msg and 'data_prefix' in msg
    assert '0.jpg' not in msg


def test_degenerate_boxes_dropped_with_one_warning(coco_writer, tmp_path):
    anns = [dict(id=10, image_id=1, category_id=1, bbox=[1, 1, 0, 5]),     # zero width
            dict(id=11, image_id=1, category_id=1, bbox=[1, 1, 5, -2]),    # negative height
            dict(id=12, image_id=1, category_id=2, bbox=[1, 1, 0.5, 5]),   # < 1 px (MMDetection drops)
            dict(id=13, image_id=1, category_id=2, bbox=[2, 2, 6, 6]),     # fine
            dict(id=14, image_id=1, category_id=2, bbox=[50, 50, 5, 5])]   # entirely outside 30x30
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], anns, CATS)
    ds, msgs = dataset_warnings(lambda: build_coco(str(tmp_path), ann))
    assert ds.get_data_info(0)['instances'] == [dict(bbox=[2.0, 2.0, 8.0, 8.0], bbox_label=1, ignore_flag=0)]
    assert len(msgs) == 1
    assert 'dropped 4 boxes' in msgs[0] and 'instances.json' in msgs[0]
    assert 'ann id 10' in msgs[0] and 'ann id 12' in msgs[0] and '1 entirely outside' in msgs[0]
    assert 'ann id 14' in msgs[0]


def test_boxes_partly_outside_are_clipped_with_one_warning(coco_writer, tmp_path):
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[-5, 2, 10, 10]),
            dict(id=2, image_id=1, category_id=1, bbox=[25, 25, 10, 10]),
            dict(id=3, image_id=1, category_id=1, bbox=[2, 2, 4, 4])]
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], anns, CATS)
    ds, msgs = dataset_warnings(lambda: build_coco(str(tmp_path), ann, metainfo=dict(classes=('cat',))))
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == [[0, 2, 5, 12], [25, 25, 30, 30], [2, 2, 6, 6]]
    assert len(msgs) == 1 and 'clipped 2 boxes' in msgs[0]


def test_unknown_category_id_is_fatal(coco_writer, tmp_path):
    anns = [dict(id=77, image_id=3, category_id=9, bbox=[1, 1, 5, 5])]
    ann = coco_writer(str(tmp_path), [(3, 'three.jpg', 30, 30)], anns, CATS)
    with pytest.raises(DatasetError) as err:
        build_coco(str(tmp_path), ann)
    msg = str(err.value)
    assert 'ann id 77' in msg and 'category_id 9' in msg and 'image 3' in msg and 'three.jpg' in msg
    assert 'instances.json' in msg


def test_unknown_category_message_says_how_to_skip_and_the_switch_skips(coco_writer, tmp_path):
    """Still fatal by default, and the message names the switch; with skip_unknown_categories=True the
    annotation is skipped (MMDetection's behaviour) with one warning naming it."""
    anns = [dict(id=77, image_id=3, category_id=9, bbox=[1, 1, 5, 5]),
            dict(id=78, image_id=3, category_id=2, bbox=[2, 2, 4, 4])]
    ann = coco_writer(str(tmp_path), [(3, 'three.jpg', 30, 30)], anns, CATS)
    with pytest.raises(DatasetError, match='skip_unknown_categories=True'):
        build_coco(str(tmp_path), ann)
    ds, msgs = dataset_warnings(lambda: build_coco(str(tmp_path), ann, skip_unknown_categories=True))
    assert ds.get_data_info(0)['instances'] == [dict(bbox=[2.0, 2.0, 6.0, 6.0], bbox_label=1, ignore_flag=0)]
    skipped = [m for m in msgs if 'skipped' in m]
    assert len(skipped) == 1 and 'ann id 77' in skipped[0] and 'category_id 9' in skipped[0]


def test_duplicate_annotation_ids_are_fatal(coco_writer, tmp_path):
    """MMDetection: "Annotation ids in ... are not unique!"; here with the repeated ids named."""
    anns = [dict(id=5, image_id=1, category_id=1, bbox=[1, 1, 5, 5]),
            dict(id=5, image_id=2, category_id=2, bbox=[1, 1, 5, 5]),
            dict(id=6, image_id=2, category_id=2, bbox=[2, 2, 5, 5])]
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30), (2, 'b.jpg', 30, 30)], anns, CATS)
    with pytest.raises(DatasetError, match=r'instances.json: annotation ids are not unique: 1 ids .*: 5\.'):
        build_coco(str(tmp_path), ann)

    class Repeats(CocoDataset):  # MMDetection's switch for datasets that reuse ids (e.g. Objects365)
        ANN_ID_UNIQUE = False

    ds = Repeats(ann_file=ann, data_prefix=dict(img=os.path.join(str(tmp_path), 'images')), serialize_data=False,
                 metainfo=dict(classes=('cat', 'dog')))
    assert [len(ds.get_data_info(i)['instances']) for i in range(2)] == [1, 2]


def test_default_coco_classes_load_the_subset_a_file_defines(coco_writer, tmp_path):
    """No metainfo: the 80 COCO classes. A file defining only 'dog' (id 18) and 'person' (id 1) loads
    with COCO's labels (dog 16, person 0), one warning lists the 78 undefined classes; a class list
    given by the user must still be defined in full."""
    anns = [dict(id=1, image_id=1, category_id=18, bbox=[1, 1, 5, 5]),
            dict(id=2, image_id=1, category_id=1, bbox=[2, 2, 5, 5])]
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], anns, [(18, 'dog'), (1, 'person')])
    ds, msgs = dataset_warnings(lambda: CocoDataset(ann_file=ann, serialize_data=False,
                                                    data_prefix=dict(img=os.path.join(str(tmp_path), 'images'))))
    assert len(ds.metainfo['classes']) == 80
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [16, 0]
    assert ds.cat2label == {1: 0, 18: 16}
    assert ds.cat_ids[0] == 1 and ds.cat_ids[16] == 18 and ds.cat_ids.count(None) == 78
    assert len(msgs) == 1 and '78 of the 80 default COCO classes' in msgs[0] and 'bicycle, car' in msgs[0]
    with pytest.raises(DatasetError, match=r"\['cat'\]"):
        build_coco(str(tmp_path), ann, metainfo=dict(classes=('dog', 'cat')))


def test_undefined_class_name_is_fatal_with_available_names(coco_writer, tmp_path):
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5])],
                      CATS)
    with pytest.raises(DatasetError, match=r"\['dgo'\].*Available names: \['cat', 'dog'\]"):
        build_coco(str(tmp_path), ann, metainfo=dict(classes=('cat', 'dgo')))


def test_defined_class_without_annotations_warns(coco_writer, tmp_path):
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5])],
                      CATS)
    ds, msgs = dataset_warnings(lambda: build_coco(str(tmp_path), ann))
    assert len(ds) == 1
    assert len(msgs) == 1 and 'no annotation' in msgs[0] and 'dog' in msgs[0] and 'cat' not in msgs[0]


def test_invalid_json_is_fatal_with_line(tmp_path):
    (tmp_path / 'bad.json').write_text('{"images": [],\n "categories": [,]}')
    with pytest.raises(DatasetError, match=r'bad\.json is not valid json.*line 2'):
        build_coco(str(tmp_path), str(tmp_path / 'bad.json'))
    with pytest.raises(DatasetError, match='does not exist'):
        build_coco(str(tmp_path), str(tmp_path / 'absent.json'))


def test_malformed_records_are_fatal(coco_writer, tmp_path):
    three_numbers = dict(id=5, image_id=1, category_id=1, bbox=[1, 1, 5], area=5)
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], [three_numbers], CATS)
    with pytest.raises(DatasetError, match=r'ann id 5: \[1, 1, 5\]'):
        build_coco(str(tmp_path), ann)
    (tmp_path / 'nofields.json').write_text('{"images": [{"id": 1}], "categories": []}')
    with pytest.raises(DatasetError, match=r'image #0 lacks file_name, width, height'):
        build_coco(str(tmp_path), str(tmp_path / 'nofields.json'))


def test_empty_after_filtering_is_fatal_and_says_why(coco_writer, tmp_path):
    images = [(1, 'a.jpg', 30, 30), (2, 'b.jpg', 100, 100), (3, 'c.jpg', 20, 100)]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5]),
            dict(id=2, image_id=3, category_id=1, bbox=[1, 1, 5, 5])]
    ann = coco_writer(str(tmp_path), images, anns, CATS)
    with pytest.raises(DatasetError) as err:
        build_coco(str(tmp_path), ann, filter_cfg=dict(filter_empty_gt=True, min_size=32))
    msg = str(err.value)
    assert 'no image left after filtering 3 images' in msg
    assert 'filter_empty_gt=True removed 1' in msg and 'min_size=32 removed 2' in msg
    empty = tmp_path / 'empty.json'
    empty.write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}')
    with pytest.raises(DatasetError, match='lists no images'):
        build_coco(str(tmp_path), str(empty), metainfo=dict(classes=('cat',)))


def test_corrupt_image_during_getitem_names_path_and_index(coco_writer, tmp_path):
    images = [(1, 'good.jpg', 30, 30), (2, 'broken.jpg', 30, 30)]
    anns = [dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 5, 5]) for i in (1, 2)]
    ann = coco_writer(str(tmp_path), images, anns, CATS)
    (tmp_path / 'images' / 'broken.jpg').write_bytes(b'not an image at all')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackDetInputs')]
    ds = build_coco(str(tmp_path), ann, pipeline=pipeline)
    assert ds[0]['inputs'].shape == (3, 30, 30)
    with pytest.raises(DatasetError, match=r'CocoDataset\[1\].*broken\.jpg'):
        ds[1]  # training mode too: an exception is never swallowed by a refetch


def test_xml_problems_are_fatal_and_all_listed(voc_writer, tmp_path):
    sub = tmp_path / 'VOC2007'
    voc_writer(str(sub), 'test', [('a', 30, 30, [('dog', 1, 1, 9, 9, 0)]), ('b', 30, 30, []), ('c', 30, 30, [])])
    (sub / 'Annotations' / 'b.xml').write_text('<annotation>\n<size><width>30</width>\n</annotation>')
    (sub / 'Annotations' / 'c.xml').write_text(
        '<annotation><size><width>30</width><height>30</height></size><object><name>dog</name>'
        '<bndbox><xmin>1</xmin><ymin>x</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>')
    with open(sub / 'ImageSets' / 'Main' / 'test.txt', 'a') as f:
        f.write('d\n')
    with pytest.raises(DatasetError) as err:
        VOCDataset(data_root=str(tmp_path), ann_file='VOC2007/ImageSets/Main/test.txt',
                   data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True, serialize_data=False)
    msg = str(err.value)
    assert '3 problems' in msg
    assert 'b.xml: not valid XML: mismatched tag: line 3' in msg
    assert 'c.xml object #0' in msg and 'd.xml: file does not exist' in msg


def test_xml_degenerate_and_outside_boxes_warn_once(voc_writer, tmp_path):
    voc_writer(str(tmp_path), 'all', [('a', 30, 30, [('dog', 5, 5, 5, 9, 0), ('dog', 2, 2, 40, 9, 0),
                                                     ('dog', 3, 3, 8, 8, 0)])])
    ds, msgs = dataset_warnings(lambda: XMLDataset(data_root=str(tmp_path), ann_file='ImageSets/Main/all.txt',
                                                   metainfo=dict(classes=('dog',)), serialize_data=False))
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == [[1, 1, 30, 8], [2, 2, 7, 7]]
    assert len(msgs) == 2
    assert 'dropped 1 boxes' in msgs[0] and 'a.xml object #0' in msgs[0]
    assert 'clipped 1 boxes' in msgs[1] and 'a.xml object #1' in msgs[1]


def test_xml_dataset_without_classes_is_fatal(voc_writer, tmp_path):
    voc_writer(str(tmp_path), 'all', [('a', 30, 30, [])])
    with pytest.raises(DatasetError, match='metainfo=dict\\(classes'):
        XMLDataset(data_root=str(tmp_path), ann_file='ImageSets/Main/all.txt')


def test_classes_given_as_a_string_is_fatal(coco_writer, tmp_path):
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], [], CATS)
    with pytest.raises(DatasetError, match=r"classes=\('dog',\)"):
        build_coco(str(tmp_path), ann, metainfo=dict(classes=('dog')))


def test_annotation_of_unlisted_image_warns_and_ignore_field_skips(coco_writer, tmp_path):
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5]),
            dict(id=2, image_id=1, category_id=2, bbox=[2, 2, 5, 5], ignore=True),  # skipped as MMDetection
            dict(id=3, image_id=99, category_id=2, bbox=[1, 1, 5, 5])]
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30)], anns, CATS)
    ds, msgs = dataset_warnings(lambda: build_coco(str(tmp_path), ann))
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [0]
    assert len(msgs) == 1 and 'ann id 3 (image_id 99)' in msgs[0]


def test_bad_image_records_are_fatal(coco_writer, tmp_path):
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30), (2, 'b.jpg', 0, 30)], [], CATS, write_images=False)
    with pytest.raises(DatasetError, match=r'image id 2 \(0 x 30\)'):
        build_coco(str(tmp_path), ann)
    ann = coco_writer(str(tmp_path), [(1, 'a.jpg', 30, 30), (1, 'b.jpg', 30, 30)], [], CATS, write_images=False)
    with pytest.raises(DatasetError, match='image ids occur more than once'):
        build_coco(str(tmp_path), ann)
