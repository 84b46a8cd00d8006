# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming compression of artifacts (private): zstd through the zstandard library."""

from __future__ import annotations

import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

try:
    import zstandard
    HAS_ZSTD = True
    ZSTD_IMPORT_ERROR = None
except ImportError:
    HAS_ZSTD = False
    ZSTD_IMPORT_ERROR = traceback.format_exc()

CODECS = ('zstd', 'none')
SUFFIX = {'zstd': '.zst', 'none': ''}


class _Plain:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        return self._handle.write(data)

    def read(self, size=-1):
        return self._handle.read(size)

    def close(self):
        pass


def writer(handle, codec, level=3, threads=0):
    """Return a writable that compresses into ``handle``; call ``close()`` to end the frame."""
    if codec == 'none':
        return _Plain(handle)
    _require(codec)
    return zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True).stream_writer(
        handle, closefd=False)


def end_frame(stream, codec):
    """End the frame ``writer`` has open (written out whole), so that what follows may be other frames, written
    elsewhere (a zstd stream is a series of frames; ``reader`` reads across them)."""
    if codec != 'none':
        stream.flush(zstandard.FLUSH_FRAME)


def reader(handle, codec):
    """Return a readable that decompresses ``handle``."""
    if codec == 'none':
        return _Plain(handle)
    _require(codec)
    return zstandard.ZstdDecompressor().stream_reader(handle, closefd=False, read_across_frames=True)


def _require(codec):
    if codec != 'zstd':
        raise CairnError('compression %r is not known; use one of %s' % (codec, ', '.join(CODECS)))
    if not HAS_ZSTD:
        raise CairnError('the Python library zstandard is needed for zstd compression on this host: '
                         'pip install "zstandard>=0.21.0" for the Python Ansible uses here',
                         exception=ZSTD_IMPORT_ERROR)
