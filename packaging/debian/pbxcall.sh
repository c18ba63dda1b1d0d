#!/bin/sh
# pbxcall's admin commands (python3 -m pbxcall), from the package's tree.
exec /usr/bin/python3 /usr/share/pbxcall/pbxcall "$@"
