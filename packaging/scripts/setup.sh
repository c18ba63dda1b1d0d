#!/bin/sh
# pbxcall's package set-up, shared by the .deb's maintainer scripts and the .rpm's
# scriptlets (so what the Debian tests exercise is what EL runs):
#   setup.sh configure   byte-compile for this python3; /etc/pbxcall (root:asterisk 0750);
#                        the state directory beside the spool, owned by the spool's owner
#   setup.sh remove      drop the byte-compiled files
#   setup.sh purge       remove the settings and the state
# PBXCALL_ROOT prefixes every path (a scratch root in the tests); empty on a real system.
set -e
root=${PBXCALL_ROOT:-}
case "$1" in
configure)
    python3 -m compileall -q "$root/usr/share/pbxcall/pbxcall" >/dev/null 2>&1 || true
    group=root
    getent group asterisk >/dev/null 2>&1 && group=asterisk
    if [ ! -d "$root/etc/pbxcall" ]; then
        install -d -m 0750 "$root/etc/pbxcall"
        chgrp "$group" "$root/etc/pbxcall" 2>/dev/null || true
    fi
    if [ -d "$root/var/spool/asterisk/outgoing" ] && [ ! -e "$root/var/spool/asterisk/pbxcall" ]; then
        owner=$(stat -c %u:%g "$root/var/spool/asterisk/outgoing")
        install -d -m 0750 "$root/var/spool/asterisk/pbxcall"
        chown "$owner" "$root/var/spool/asterisk/pbxcall"
    fi
    ;;
remove)
    rm -rf "$root/usr/share/pbxcall/pbxcall/__pycache__"
    ;;
purge)
    rm -rf "$root/etc/pbxcall" "$root/var/spool/asterisk/pbxcall"
    ;;
*)
    echo "usage: setup.sh configure|remove|purge" >&2
    exit 2
    ;;
esac
exit 0
