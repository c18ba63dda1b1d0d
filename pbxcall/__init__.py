"""pbxcall: the drop-in replacement for FreePBX's ``/api/make_call.php``.

Modules, imports flowing one way: ``errors`` <- ``numbers``, ``callfile`` <-
``settings`` <- ``auth``, ``request``, ``spool``, ``log`` <- ``app`` <- ``cli``.
Nothing is imported here: a CGI process pays for every import.
"""

__version__ = "0.1.0"
