"""Exception and warning types raised by the datasets and transforms of rcnn_plugins.

``DatasetError`` is a ``ValueError`` so code that already guards dataset construction with
``except ValueError`` keeps working; catching ``DatasetError`` singles out bad input data
(annotation files, images, class lists) from programming errors.
"""


class DatasetError(ValueError):
    """Bad input data: the message names the file, the record and the likely fix."""


class DatasetWarning(UserWarning):
    """Input data was repaired or looks suspicious (boxes clipped or dropped, unused classes)."""
