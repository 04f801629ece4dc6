"""A stand-in custom authentication server (API 0.5.0) for the integration tests: real HTTPS
(Python's ssl and ThreadingHTTPServer) on a background thread. It records every request and
answers from a table the test programs, by the CONNECT's username:

    server = CustomAuthServer(cert_file, key_file, ca_file=None)  # ca_file: require client certs
    server.start()
    server.set_answer("dev1", 200, {"expiry": "2030-05-08T20:04:16Z", "attributes": {"group": "a"}})
    server.set_answer("bad", 403, {"reason": 135, "message": "no"})
    server.set_answer("slow", 200, {}, delay=3)
    server.set_answer("old", [(422, {"supportedVersions": ["0.5.0"]}), (200, {})])  # in turn
    ... server.port, server.requests ...
    server.stop()

A body that is a dict or list is sent as JSON, a str or bytes as it is. Usernames without an
answer get `default_answer` (200 {} unless changed); re-authentications ({"type":"auth"}) the
answer of the key AUTH_KEY."""
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AUTH_KEY = "<auth>"  # the answer key for {"type":"auth"} requests
NO_USERNAME_KEY = "<none>"  # the answer key for CONNECTs without a username


class RecordedRequest:
    def __init__(self, method, path, query, headers, body, json_body, client_cert):
        self.method = method  # "POST"
        self.path = path  # "/" or the endpoint's path
        self.query = query  # {"api-version": "0.5.0"}: the first value of each parameter
        self.headers = headers  # lower-case names
        self.body = body  # bytes
        self.json = json_body  # the parsed body, or None
        self.client_cert = client_cert  # ssl's getpeercert() dict, or None

    def __repr__(self):
        return f"RecordedRequest({self.method} {self.path} {self.query} {self.json})"


class CustomAuthServer:
    def __init__(self, cert_file, key_file, ca_file=None, host="127.0.0.1"):
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_cert_chain(cert_file, key_file)
        if ca_file:
            self._context.load_verify_locations(ca_file)
            self._context.verify_mode = ssl.CERT_REQUIRED
        self._host = host
        self._lock = threading.Lock()
        self._answers = {}
        self._requests = []
        self.default_answer = (200, {}, 0)
        self._httpd = None
        self._thread = None

    # Programming -------------------------------------------------------------------------------

    def set_answer(self, username, status, body=None, delay=0):
        """The answer to CONNECTs with this username (AUTH_KEY: re-authentications). `status` may
        be a list of (status, body) or (status, body, delay) tuples, given in turn; the last one
        repeats."""
        if isinstance(status, list):
            steps = [tuple(step) + (0,) * (3 - len(step)) for step in status]
        else:
            steps = [(status, {} if body is None else body, delay)]
        with self._lock:
            self._answers[username] = steps

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    # Running -----------------------------------------------------------------------------------

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: the tests read server.requests
                pass

            def do_POST(self):
                server._handle(self)

            def do_GET(self):
                server._handle(self)

        class Httpd(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = self.socket.accept()
                # The handshake in the request's thread, not the accepting one: a client that
                # stalls its handshake must not stop the others.
                return server._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

            def finish_request(self, request, client_address):
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(request, client_address)

        self._httpd = Httpd((self._host, 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="custom-auth-server", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Answering ---------------------------------------------------------------------------------

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        try:
            json_body = json.loads(body) if body else None
        except ValueError:
            json_body = None
        url = urllib.parse.urlsplit(handler.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        recorded = RecordedRequest(handler.command, url.path, query, headers, body, json_body,
                                   handler.connection.getpeercert() or None)
        if isinstance(json_body, dict) and json_body.get("type") == "auth":
            key = AUTH_KEY
        elif isinstance(json_body, dict):
            key = json_body.get("username", NO_USERNAME_KEY)
        else:
            key = None
        with self._lock:
            self._requests.append(recorded)
            steps = self._answers.get(key)
            if steps:
                status, answer, delay = steps.pop(0) if len(steps) > 1 else steps[0]
            else:
                status, answer, delay = self.default_answer
        if delay:
            time.sleep(delay)
        if isinstance(answer, (dict, list)):
            payload, content_type = json.dumps(answer).encode(), "application/json"
        else:
            payload = answer.encode() if isinstance(answer, str) else bytes(answer)
            content_type = "text/plain"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (its timeout): nothing to tell
        handler.close_connection = True


if __name__ == "__main__":
    # Self-test: a server with a certificate from pki.py, one request through urllib.
    import os
    import sys
    import tempfile
    import urllib.request

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pki

    with tempfile.TemporaryDirectory() as folder:
        root = pki.make_cert(folder, "root", ca=True)
        leaf = pki.make_cert(folder, "auth-server", parent=root, sans=("DNS:localhost", "IP:127.0.0.1"))
        with CustomAuthServer(leaf.crt, leaf.key) as server:
            server.set_answer("dev1", 200, {"expiry": "2030-05-08T20:04:16Z", "attributes": {"group": "a"}})
            client = ssl.create_default_context(cafile=root.crt)
            request = urllib.request.Request(
                f"{server.url}/?api-version=0.5.0", method="POST",
                data=json.dumps({"type": "connect", "username": "dev1", "password": "cHc="}).encode(),
                headers={"Content-Type": "application/json", "X-Tenant": "contoso"})
            with urllib.request.urlopen(request, context=client, timeout=10) as response:
                answer = json.loads(response.read())
            assert response.status == 200, response.status
            assert answer["attributes"] == {"group": "a"}, answer
            (seen,) = server.requests
            assert seen.query == {"api-version": "0.5.0"} and seen.headers["x-tenant"] == "contoso", seen
            assert seen.json["username"] == "dev1", seen
        print("custom_auth_server: ok")
