# mod_wsgi entry point: WSGIScriptAlias /api/make_call.php /opt/pbxcall/apache/pbxcall.wsgi
# Settings: SetEnv PBXCALL_CONFIG (reaches the app in the WSGI environ) or the usual places.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from pbxcall.app import application  # noqa: E402,F401
