"""Reading pictures from files robustly: one clear error per bad file, never a crash.

Accepts JPEG, PNG (alpha dropped), BMP, greyscale and 16-bit pictures, always
returning 8-bit RGB. Pictures larger than ``MAX_PIXELS`` are refused before they
are decoded (a 20000x20000 picture would need 1.2 GB), unless ``downscale_huge``
is set, in which case OpenCV decodes them at a reduced size.
"""
from __future__ import annotations

import os
import struct
from typing import Optional

import cv2
import numpy as np

from agegender.edge.contract import CANONICAL_SIZE, crop_to_input, to_rgb_uint8
from agegender.edge.errors import AgeGenderError

MAX_PIXELS = 50_000_000  # 50 Mpx: bigger than any camera frame we expect (OpenCV is told too: edge/__init__.py)
MAX_FILE_BYTES = 256 * 2 ** 20  # a picture file over 256 MiB is refused before it is read
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(AgeGenderError):
    """A picture that cannot be read; the message names the file and the reason."""


def image_size_from_header(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from a PNG/JPEG/BMP header without decoding, None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"BM" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 1.x core header: 16-bit sizes
            return struct.unpack("<HH", data[18:22])
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
            i += 2 + seg_len
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG from its APP1 segment; 1 when absent or unreadable."""
    if data[:2] != b"\xff\xd8":
        return 1
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\0\0":
            tiff = data[i + 10:i + 2 + length]
            endian = "<" if tiff[:2] == b"II" else ">" if tiff[:2] == b"MM" else None
            if endian is None or len(tiff) < 8:
                return 1
            ifd = struct.unpack(endian + "I", tiff[4:8])[0]
            if ifd + 2 > len(tiff):
                return 1
            for k in range(struct.unpack(endian + "H", tiff[ifd:ifd + 2])[0]):
                entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
                if len(entry) == 12 and struct.unpack(endian + "H", entry[:2])[0] == 0x0112:
                    value = struct.unpack(endian + "H", entry[8:10])[0]
                    return value if 1 <= value <= 8 else 1
            return 1
        if marker in (0xDA, 0xD9):  # image data starts: no EXIF before it
            return 1
        i += 2 + length
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The picture as it should be seen, given its EXIF orientation (2-8 flip and/or rotate)."""
    ops = {2: lambda x: cv2.flip(x, 1), 3: lambda x: cv2.rotate(x, cv2.ROTATE_180), 4: lambda x: cv2.flip(x, 0),
           5: lambda x: cv2.transpose(x), 6: lambda x: cv2.rotate(x, cv2.ROTATE_90_CLOCKWISE),
           7: lambda x: cv2.rotate(cv2.transpose(x), cv2.ROTATE_180),
           8: lambda x: cv2.rotate(x, cv2.ROTATE_90_COUNTERCLOCKWISE)}
    return np.ascontiguousarray(ops[orientation](image)) if orientation in ops else image


def read_image(path: str, downscale_huge: bool = False) -> np.ndarray:
    """An 8-bit RGB picture from a file, upright (EXIF orientation applied), or ImageError saying why not."""
    return read_image_oriented(path, downscale_huge)[0]


def read_image_oriented(path: str, downscale_huge: bool = False) -> tuple[np.ndarray, int]:
    """(8-bit RGB picture, upright; the EXIF orientation that was applied, 1 = none)."""
    try:
        size_bytes = os.path.getsize(path)
        if size_bytes > MAX_FILE_BYTES:
            raise ImageError(f"{path}: file too large for a picture ({size_bytes / 2 ** 20:.0f} MiB; limit "
                             f"{MAX_FILE_BYTES // 2 ** 20} MiB)")
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not a picture") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageError(f"{path}: empty file")
    flags = cv2.IMREAD_UNCHANGED
    size = image_size_from_header(data[:65536].tobytes())
    if size and size[0] * size[1] > MAX_PIXELS:
        if not downscale_huge:
            raise ImageError(f"{path}: picture too large ({size[0]}x{size[1]} px; limit "
                             f"{MAX_PIXELS // 1_000_000} Mpx)")
        factor = size[0] * size[1] / MAX_PIXELS
        flags = cv2.IMREAD_REDUCED_COLOR_8 if factor > 16 else (
            cv2.IMREAD_REDUCED_COLOR_4 if factor > 4 else cv2.IMREAD_REDUCED_COLOR_2)
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as exc:  # e.g. a header declaring more pixels than OpenCV's limit: one line, never a crash
        reason = (f"more than {MAX_PIXELS // 1_000_000} Mpx" if "MAX_IMAGE_PIXELS" in str(exc)
                  else "OpenCV could not decode it")
        raise ImageError(f"{path}: not a readable picture ({reason})") from None
    if image is None:
        raise ImageError(f"{path}: not a readable picture (unknown format or corrupt data)")
    if image.size == 0 or min(image.shape[:2]) < 1:
        raise ImageError(f"{path}: picture has no pixels")
    orientation = exif_orientation(data[:131072].tobytes())
    return apply_orientation(to_rgb_uint8(image), orientation), orientation


def read_canonical(path: str) -> np.ndarray:
    """A training-style face crop from a file, as the canonical RGB crop (200x200)."""
    image = read_image(path)
    if image.shape[:2] != (CANONICAL_SIZE, CANONICAL_SIZE):
        image = crop_to_input(image, CANONICAL_SIZE)
    return image


def list_images(folder: str) -> list[str]:
    """Picture files of a folder by extension, sorted."""
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n)))
