"""``python3 -m pbxcall notify``: turn call events into webhooks and deliver them.

A long-running process (systemd: packaging/pbxcall-notify.service), or ``--once`` from
cron.  Each round it

1. looks at every call in ``<state_path>/hooks/`` (calls someone wants to hear about)
   and writes the events that happened to the outbox (pbxcall.outbox) —
   ``call.answered`` when the outcome file says the agent picked up, ``call.finished``
   when the call file is in ``outgoing_done/`` or ``cancelled/`` (with the outcome,
   once Asterisk wrote it; at most OUTCOME_GRACE seconds later) — then notes them;
2. sends every outbox entry that is due, signed, and records the answer.

Between rounds it sleeps on inotify (the spool and state directories it reads), so a
finished call is reported within a second and an idle sender uses no CPU; where
inotify is missing it polls every POLL seconds.  An edge module: nothing imports it.
"""

import json
import os
import time

from .app import status_answer
from .fileio import read_state, write_whole
from .outbox import Outbox
from .schedule import iso_utc
from .settings import Settings
from .statedir import HOOKS_DIR, OUTCOME_DIR, cancelled_path
from .webhook import (
    SIGNATURE_HEADER,
    TIMEOUT,
    Target,
    body,
    callback_target,
    event_id,
    next_attempt,
    retryable,
    sign,
    targets_for,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .log import Log

    Send = Callable[[str, Dict[str, str], bytes, Optional[str]], Tuple[Optional[int], str]]

OUTCOME_GRACE = 10.0  # seconds to wait after the archive for Asterisk's hangup handler
FORGET_AFTER = 600.0  # seconds after which a call that vanished (archive off) is dropped, logged
HEARTBEAT = "notify.alive"  # touched every round: check tells whether a sender runs
POLL = 0.5
IDLE = 30.0  # longest sleep without an event: the heartbeat and the retry timer


def post(url: str, headers: "Dict[str, str]", data: bytes, cafile: "Optional[str]") -> "Tuple[Optional[int], str]":
    """POST ``data``: (status, '') or (None, why) — never following a redirect, HTTPS
    verified against the system CAs (or ``cafile``), TIMEOUT seconds each step."""
    import http.client

    from .webhook import parse_url

    scheme, host, port, path = parse_url(url)
    try:
        if scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=cafile)
            connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT,
                                                     context=context)  # type: http.client.HTTPConnection
        else:
            connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            connection.request("POST", path, body=data, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            return response.status, "" if 200 <= response.status < 300 else "HTTP %d" % response.status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        return None, "%s: %s" % (type(exc).__name__, exc)


class Sender:
    """One settings file's sender: ``round()`` does one pass, ``run()`` loops."""

    def __init__(self, settings: "Settings", log: "Log", send: "Send" = post) -> None:
        self.settings = settings
        self.log = log
        self.send = send
        self.state = settings.state_path
        self.outbox = Outbox(self.state)
        self.hooks = os.path.join(self.state, HOOKS_DIR)

    # -- events ------------------------------------------------------------------
    def _targets(self, record: "Dict[str, Any]", event: str) -> "List[Target]":
        key = next((key for key in self.settings.keys if key.name == record.get("key")), None)
        callback = None
        if record.get("callback_url") and self.settings.callback_secret:
            callback = callback_target(record["callback_url"], self.settings.callback_secret)
        return targets_for(event, self.settings.targets, key.webhooks if key else (), callback)

    def _queue(self, filename: str, event: str, record: "Dict[str, Any]", call: "Dict[str, Any]",
               now: float) -> int:
        data = body(filename, event, iso_utc(now), call)
        return sum(self.outbox.add(filename, event, event_id(filename, event), target.name, target.url, data, now)
                   for target in self._targets(record, event))

    def _note(self, filename: str, record: "Dict[str, Any]") -> None:
        """Rewrite the call's hooks record whole (no symlink followed)."""
        write_whole(os.path.join(self.hooks, filename), json.dumps(record).encode("ascii"))

    def events(self, now: float) -> int:
        """Write every event that happened to the outbox -> entries written."""
        from . import spool

        try:
            names = sorted(name for name in os.listdir(self.hooks) if spool.is_call_name(name))
        except FileNotFoundError:
            return 0
        places = spool.places(self.settings.outgoing_path, self.state)
        written = 0
        for filename in names:
            path = os.path.join(self.hooks, filename)
            data = read_state(self.state, "%s/%s" % (HOOKS_DIR, filename))
            try:
                record = json.loads((data or b"").decode("ascii"))
                age = now - os.lstat(path).st_mtime
            except (OSError, ValueError):
                continue
            found = spool.locate(places, filename)
            if found is None:
                if age > FORGET_AFTER:  # archive off: Asterisk deleted the finished call file
                    self.log.warning("notify: %s is in no spool directory (archive off?): no call.finished sent"
                                     % filename)
                    os.unlink(path)
                continue
            from .callstate import FINISHED, read

            where, text, st = found
            call = status_answer(self.settings, (filename, where, read(text), st), now)
            done = record.setdefault("done", [])
            outcome = call["outcome"]
            over = call["state"] in FINISHED  # Asterisk is done with it
            finished = over or call["state"] == "cancelled"
            if over and self.settings.outcome and outcome["ended_at"] is None \
                    and outcome["agent"] != "unknown" and now - st.st_ctime < OUTCOME_GRACE:
                continue  # archived; Asterisk's hangup handler is still to write the outcome
            try:
                if "call.answered" not in done and outcome["agent"] == "answered":
                    written += self._queue(filename, "call.answered", record, call, now)
                    done.append("call.answered")
                    if not finished:
                        self._note(filename, record)
                if finished:
                    written += self._queue(filename, "call.finished", record, call, now)
                    os.unlink(path)
            except OSError as exc:  # kept in hooks/: tried again next round
                self.log.warning("notify: cannot queue the events of %s: %s" % (filename, exc))
        return written

    # -- delivery ----------------------------------------------------------------
    def _target(self, name: str, url: str) -> "Optional[Target]":
        if name == "callback":
            secret = self.settings.callback_secret
            return callback_target(url, secret) if secret else None
        everything = list(self.settings.targets) + [target for key in self.settings.keys for target in key.webhooks]
        return next((target for target in everything if target.name == name and target.url == url), None)

    def deliver(self, now: float) -> "Tuple[int, Optional[float]]":
        """Send what is due -> (delivered, when the next entry is due or None)."""
        from . import __version__

        delivered = 0
        soonest: "Optional[float]" = None
        for name, entry in self.outbox.pending():
            if entry["next_at"] > now:
                soonest = entry["next_at"] if soonest is None else min(soonest, entry["next_at"])
                continue
            target = self._target(entry["target"], entry["url"])
            if target is None:
                self.outbox.failed(name, entry, "target %s (%s) is no longer in the settings"
                                   % (entry["target"], entry["url"]), None)
                continue
            data = entry["body"].encode("ascii")
            stamp = int(time.time())
            headers = {"Content-Type": "application/json", "User-Agent": "pbxcall/%s" % __version__,
                       "X-Pbxcall-Event": entry["event"], "X-Pbxcall-Event-Id": entry["event_id"],
                       SIGNATURE_HEADER: sign(target.secret, stamp, data)}
            status, error = self.send(entry["url"], headers, data, self.settings.webhook_ca_file)
            if status is not None and 200 <= status < 300:
                self.outbox.delivered(name)
                delivered += 1
                continue
            later = next_attempt(entry["created"], entry.get("attempts", 0) + 1, time.time()) \
                if retryable(status) else None
            self.outbox.failed(name, entry, error, later)
            self.log.warning("notify: %s to %s: %s%s" % (entry["event_id"], entry["url"], error,
                                                          "" if later else " - kept as a dead letter"))
            if later is not None:
                soonest = later if soonest is None else min(soonest, later)
        return delivered, soonest

    def round(self, now: "Optional[float]" = None) -> "Tuple[int, int, Optional[float]]":
        """One pass -> (events written, deliveries, when the next retry is due)."""
        now = time.time() if now is None else now
        written = self.events(now)
        delivered, soonest = self.deliver(now)
        self._heartbeat()
        return written, delivered, soonest

    def _heartbeat(self) -> None:
        from .fileio import open_state

        try:
            fd = open_state(self.state, HEARTBEAT, os.O_WRONLY | os.O_CREAT)
        except OSError as exc:
            self.log.warning("notify: cannot mark itself alive in %s: %s" % (self.state, exc))
            return
        try:
            os.utime(fd)
        finally:
            os.close(fd)

    def run(self, stop: "Callable[[], bool]" = lambda: False) -> None:
        """Rounds until ``stop()``: each as soon as something changed, or a retry is due."""
        from .spool import done_path

        watch = Watch([self.hooks, os.path.join(self.state, OUTCOME_DIR), cancelled_path(self.state),
                       done_path(self.settings.outgoing_path)])
        try:
            while not stop():
                _, _, soonest = self.round()
                wait = IDLE if soonest is None else max(0.0, min(IDLE, soonest - time.time()))
                watch.wait(wait)
        finally:
            watch.close()


class Watch:
    """inotify on a few directories (ctypes: the standard library has no binding);
    ``wait(seconds)`` returns when one changed or the time is up.  Without inotify,
    it sleeps at most POLL seconds."""

    MASK = 0x2 | 0x8 | 0x80 | 0x100  # IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE

    def __init__(self, directories: "List[str]") -> None:
        self.fd = -1
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                return
            for directory in directories:
                os.makedirs(directory, 0o750, exist_ok=True)
                if libc.inotify_add_watch(fd, directory.encode(), self.MASK) < 0:
                    os.close(fd)
                    return
            self.fd = fd
        except (OSError, AttributeError):
            self.fd = -1

    def wait(self, seconds: float) -> None:
        if self.fd < 0:
            time.sleep(min(seconds, POLL))
            return
        import select

        ready, _, _ = select.select([self.fd], [], [], seconds)
        if ready:
            time.sleep(0.05)  # let the writer finish the burst (archive, then outcome line)
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
