"""``python3 -m pbxcall``: see :mod:`pbxcall.cli`."""

from .cli import main

raise SystemExit(main())
