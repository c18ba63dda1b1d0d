"""The few raw file operations the spool, state and log modules share.

``os``-level on purpose: no buffering between pbxcall and the kernel, so that what
is written is written with the calls the comments promise (one ``O_APPEND`` write
for a log line, a loop until every byte is out for a call file).
"""

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List


def read_all(fd: int) -> bytes:
    """Everything from ``fd``'s position to the end."""
    chunks = []  # type: List[bytes]
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def replace_contents(fd: int, data: bytes) -> None:
    """Make ``data`` the whole content of the (locked) file ``fd``."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    write_all(fd, data)


def append(path: str, data: bytes) -> None:
    """Append ``data`` with one ``write`` on an ``O_APPEND`` descriptor.

    Lines from concurrent CGI processes never interleave or overwrite each other.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
