"""A real HTTP(S) webhook receiver on loopback, for the tests (http.server in a thread).

``Receiver(answers=...)``: each POST is recorded (headers, exact body, when) and
answered with the next status of ``answers`` (then 200).  ``tls=(cert, key)`` serves
HTTPS with a certificate the test made with openssl.
"""

import http.server
import json
import os
import ssl
import subprocess
import threading
import time


class Receiver:
    def __init__(self, answers=(), tls=None, path="/hook", port=0):
        self.answers = list(answers)
        self.received = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                data = self.rfile.read(length)
                if len(data) < length:  # the sender died mid-request (SIGKILL): nothing was received
                    return
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": data,
                                              "at": time.time(), "status": status})
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.port = self.server.server_address[1]
        self.url = "%s://%s:%d%s" % (scheme, "localhost" if tls else "127.0.0.1", self.port, path)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, status=200):
        """(event_id, event, decoded body) of what was received and answered ``status``."""
        with self.lock:
            return [(json.loads(item["body"])["event_id"], json.loads(item["body"])["event"], json.loads(item["body"]))
                    for item in self.received if item["status"] == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def make_ca(directory):
    """A test CA and a certificate for localhost signed by it -> (ca.pem, cert.pem, key.pem)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=directory, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=pbxcall test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, "ext.cnf"), "w") as stream:
        stream.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "cert.pem",
        "-days", "2", "-extfile", "ext.cnf")
    return tuple(os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem"))
