"""Request body -> the uploaded image's bytes, within the upload-size limit.

Three ways to send an image to ``POST /predict``:

- ``multipart/form-data`` with the file in the field ``image`` (``curl -F image=@photo.jpg``);
- ``application/json``: ``{"image": "<base64>"}`` (a ``data:image/...;base64,`` prefix is allowed);
- the raw bytes with ``Content-Type: image/jpeg`` (any ``image/*``) or ``application/octet-stream``.

The body is read here, never more than ``max_upload_bytes`` of it: a declared ``Content-Length``
above the limit is refused before reading, a body of unknown length when it crosses it.
"""
import base64
import binascii
import json

from starlette.requests import ClientDisconnect, Request

from .errors import RequestError
from .limits import BODY_TYPES, ServeLimits

FIELD = 'image'


def media_type(content_type: str) -> str:
    return content_type.split(';', 1)[0].strip().lower()


async def read_body(request: Request, limits: ServeLimits) -> bytes:
    """The whole body, at most ``limits.max_upload_bytes``; raises ``ClientDisconnect`` when the
    client goes away mid-upload."""
    limits.check_declared_length(request.headers.get('content-length'))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_upload_bytes:
            raise limits.too_large(size)
        chunks.append(chunk)
    return b''.join(chunks)


async def image_bytes(request: Request, limits: ServeLimits) -> bytes:
    """The uploaded image's bytes (not yet decoded); ``RequestError`` naming what is wrong."""
    ctype = media_type(request.headers.get('content-type', ''))
    if request.headers.get('content-length') == '0':
        raise RequestError(400, 'empty_body', 'the request body is empty; send an image (see GET / or docs/SERVING.md)')
    if not (ctype in BODY_TYPES or ctype.startswith('image/')):
        raise RequestError(415, 'unsupported_content_type',
                           f'Content-Type {ctype or "(none)"!r} is not accepted; send multipart/form-data with '
                           f'the file in the field {FIELD!r}, JSON {{"{FIELD}": "<base64>"}}, or the raw image '
                           'bytes as image/* or application/octet-stream')
    body = await read_body(request, limits)
    if not body:
        raise RequestError(400, 'empty_body', 'the request body is empty; send an image (see GET / or docs/SERVING.md)')
    if ctype == 'multipart/form-data':
        data = await _from_form(request, body)
    elif ctype == 'application/json':
        data = _from_json(body)
    else:
        data = body
    if not data:
        raise RequestError(400, 'empty_image', 'the uploaded image is empty (0 bytes)')
    return data


async def _from_form(request: Request, body: bytes) -> bytes:
    sent = False

    async def replay() -> dict:  # the body already read, for starlette's form parser
        nonlocal sent
        if sent:
            return {'type': 'http.disconnect'}
        sent = True
        return {'type': 'http.request', 'body': body, 'more_body': False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=16)
    except ClientDisconnect:
        raise
    except Exception as err:  # MultiPartException / HTTPException from a malformed form
        raise RequestError(400, 'bad_multipart', f'the multipart form could not be parsed: {err}')
    try:
        part = form.get(FIELD)
        if part is None:
            found = ', '.join(repr(k) for k in form.keys()) or 'none'
            raise RequestError(400, 'missing_field', f'the form has no field {FIELD!r} (fields sent: {found}); '
                                                     f'send the file as {FIELD}, e.g. curl -F {FIELD}=@photo.jpg')
        if isinstance(part, str):
            raise RequestError(400, 'not_a_file', f'the form field {FIELD!r} is text, not a file upload; '
                                                  f'e.g. curl -F {FIELD}=@photo.jpg (note the @)')
        part_type = media_type(part.content_type or '')
        if part_type and not (part_type.startswith('image/') or part_type == 'application/octet-stream'):
            raise RequestError(415, 'unsupported_content_type',
                               f'the uploaded file {part.filename!r} has Content-Type {part_type!r}; '
                               'send an image (image/jpeg, image/png, ...)')
        return await part.read()
    finally:
        await form.close()


def _from_json(body: bytes) -> bytes:
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(400, 'bad_json', f'the JSON body could not be parsed: {err}')
    if not isinstance(obj, dict) or not isinstance(obj.get(FIELD), str):
        keys = ', '.join(repr(k) for k in obj) if isinstance(obj, dict) else type(obj).__name__
        raise RequestError(400, 'missing_field', f'the JSON body needs a string field {FIELD!r} holding the '
                                                 f'base64-encoded image (got: {keys})')
    text = obj[FIELD]
    if text.startswith('data:') and ',' in text:  # a data URL from a browser's FileReader
        text = text.split(',', 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(400, 'bad_base64', f'the field {FIELD!r} is not valid base64: {err}')
