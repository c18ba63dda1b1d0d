"""The webhook outbox: one file per (event, target) under ``<state_path>/outbox/``.

An entry is written (temporary file, fsync, rename) before anything is sent, and
removed only once its receiver answered 2xx: nothing is lost when the sender dies,
the receiver is down for hours, or the machine restarts.  Its name is made of the
call, the event and the target, so writing the same event twice is one entry.  An
entry that will not be delivered moves to ``outbox/dead/`` with the reason: a dead
letter, listed and sent again by ``python3 -m pbxcall webhooks``.

Entry: ``{"event_id", "event", "target", "url", "body", "created", "attempts",
"next_at", "last_error"}`` — never a secret: the target's is looked up when sending.
"""

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, Iterator, List, Optional, Tuple

OUTBOX_DIR = "outbox"
DEAD_DIR = "dead"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def entry_name(filename: str, event: str, target: str) -> str:
    """``call-….finished.webhooks-0``: one name per call, event and target."""
    safe = "".join(char if char in _NAME_CHARS else "-" for char in target)
    return "%s.%s.%s" % (filename, event.rpartition(".")[2], safe)


class Outbox:
    """The outbox of one state directory."""

    def __init__(self, state_path: str) -> None:
        self.path = os.path.join(state_path, OUTBOX_DIR)
        self.dead = os.path.join(self.path, DEAD_DIR)

    def _write(self, directory: str, name: str, entry: "Dict[str, Any]", exclusive: bool = False) -> bool:
        """Write ``entry`` whole under ``name``; False if ``exclusive`` and it exists (here or dead)."""
        from .fileio import open_dir, write_whole

        os.close(open_dir(directory, create=True))  # a real directory: never a symlink
        if exclusive and os.path.lexists(os.path.join(self.dead, name)):
            return False
        return write_whole(os.path.join(directory, name), json.dumps(entry, sort_keys=True).encode("ascii"),
                           exclusive=exclusive)

    def add(self, filename: str, event: str, event_id: str, target: str, url: str, body: bytes,
            now: float) -> bool:
        """Queue one delivery; False if this event is already queued (or dead) for this target."""
        entry = {"event_id": event_id, "event": event, "target": target, "url": url,
                 "body": body.decode("ascii"), "created": now, "attempts": 0, "next_at": now, "last_error": None}
        return self._write(self.path, entry_name(filename, event, target), entry, exclusive=True)

    def _read(self, directory: str, name: str) -> "Optional[Dict[str, Any]]":
        from .fileio import open_file, read_all

        try:
            fd = open_file(os.path.join(directory, name), os.O_RDONLY)
            try:
                entry = json.loads(read_all(fd).decode("ascii"))
            finally:
                os.close(fd)
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def _names(self, directory: str) -> "List[str]":
        try:
            return sorted(name for name in os.listdir(directory)
                          if name.startswith("call-") and os.path.isfile(os.path.join(directory, name)))
        except FileNotFoundError:
            return []

    def _entries(self, directory: str) -> "Iterator[Tuple[str, Dict[str, Any]]]":
        for name in self._names(directory):
            entry = self._read(directory, name)
            if entry is not None:
                yield name, entry

    def pending(self) -> "Iterator[Tuple[str, Dict[str, Any]]]":
        return self._entries(self.path)

    def dead_letters(self) -> "Iterator[Tuple[str, Dict[str, Any]]]":
        return self._entries(self.dead)

    def delivered(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.path, name))
        except FileNotFoundError:
            pass

    def failed(self, name: str, entry: "Dict[str, Any]", error: str, next_at: "Optional[float]") -> None:
        """Another failed try: retry at ``next_at``, or (None) a dead letter."""
        entry = dict(entry, attempts=entry.get("attempts", 0) + 1, last_error=error[:300])
        if next_at is None:
            self._write(self.dead, name, entry)
            self.delivered(name)
        else:
            entry["next_at"] = next_at
            self._write(self.path, name, entry)

    def resend(self, name: str, now: float) -> bool:
        """A dead letter back into the outbox, as new (24 h of retries again)."""
        entry = self._read(self.dead, name)
        if entry is None:
            return False
        entry.update(created=now, attempts=0, next_at=now, last_error=None)
        self._write(self.path, name, entry)
        os.unlink(os.path.join(self.dead, name))
        return True
