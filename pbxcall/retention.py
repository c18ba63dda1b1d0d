"""Retention: remove what pbxcall left behind once it is old enough.

- ``outgoing_done/``, ``<state_path>/cancelled/`` and ``<state_path>/outcome/``:
  pbxcall's own call and outcome files (named ``call-`` + 16 hex digits) older than
  ``retention_days``;
- staging directories: ``call-*`` files older than an hour, left by a process that
  was killed between writing and renaming (never in ``outgoing/``);
- the external_id index: lines whose call file is gone.

Anything pbxcall did not create is never touched.  Run opportunistically (at most
once an hour, after a call is queued) and by ``python3 -m pbxcall prune`` for cron.
"""

from . import spool, statedir
from .fileio import join
from .settings import Settings, fallback_staging

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict

STAGING_MAX_AGE = 3600  # seconds; a call file is written and renamed in milliseconds


def run(settings: "Settings", now: float) -> "Dict[str, Any]":
    """Prune once -> how many files and index lines went, and what could not be removed."""
    cancelled = statedir.cancelled_path(settings.state_path)
    done = spool.done_path(settings.outgoing_path)
    age = settings.retention_days * 86400.0
    outcomes = join(settings.state_path, statedir.OUTCOME_DIR)
    archived, problems = spool.prune([(done, age, False), (cancelled, age, False), (outcomes, age, False)], now)
    fallback = fallback_staging(settings.outgoing_path)
    stagings = [(settings.outgoing_temp_path, float(STAGING_MAX_AGE), True)]
    if fallback != settings.outgoing_temp_path:
        stagings.append((fallback, float(STAGING_MAX_AGE), False))
    staged, more = spool.prune(stagings, now)

    places = spool.places(settings.outgoing_path, settings.state_path)
    index = statedir.index_prune(settings.state_path, lambda name: spool.where(places, name) is not None)
    return {"archived": archived, "staged": staged, "index": index, "problems": problems + more}

