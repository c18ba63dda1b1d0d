"""``python3 -m pbxcall COMMAND``, or from any directory ``python3 /opt/pbxcall/pbxcall COMMAND``."""

if not __package__:  # run as a directory: its parent, not the package itself, goes on sys.path
    import sys
    from os.path import abspath, dirname

    sys.path[0] = dirname(dirname(abspath(__file__)))  # pbxcall/numbers.py must not shadow the stdlib's
    from pbxcall.cli import main
else:
    from .cli import main

raise SystemExit(main())
