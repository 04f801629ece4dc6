"""A stand-in for the two Kubernetes API calls behind K8S-SAT authentication, over real HTTPS:

  POST /apis/authentication.k8s.io/v1/tokenreviews   (the broker's bearer token must match; the
       reviewed token's signature, issuer, expiry and audiences are checked with PyJWT)
  GET  /api/v1/namespaces/<ns>/serviceaccounts/<name> (annotations from `service_accounts`)

and helpers to mint service-account tokens and to write the files of the offline mode (JWKS,
service accounts). Needs python3-jwt and python3-cryptography (Debian).

    api = KubernetesApiStandIn(cert, key, broker_token="broker", signing_key=key_pem)
    api.start()
    api.service_accounts[("ns", "sa")] = {"aio-broker-auth/group": "authz-sat"}
    token = mint_sat(key_pem, api.issuer, ["aio-internal"], "ns", "sa", 3600)
    ... the broker at https://127.0.0.1:{api.port} ...
    api.requests   # what was asked: [{"method", "path", "headers", "body"}]
    api.fail_status = 500; api.delay = 2.0   # misbehave
    api.stop()
"""
import http.server
import json
import os
import re
import ssl
import tempfile
import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
_ACCOUNT_PATH = re.compile(r"^/api/v1/namespaces/([a-z0-9.-]+)/serviceaccounts/([a-z0-9.-]+)$")


def _bytes(pem_or_path):
    if isinstance(pem_or_path, bytes):
        return pem_or_path
    if "-----BEGIN" in pem_or_path:
        return pem_or_path.encode()
    with open(pem_or_path, "rb") as f:
        return f.read()


def public_key_of(pem_or_path):
    """The public key object of a PEM private or public key (text, bytes or a file's path)."""
    data = _bytes(pem_or_path)
    try:
        return serialization.load_pem_private_key(data, None).public_key()
    except (ValueError, TypeError):
        return serialization.load_pem_public_key(data)


def mint_sat(private_key_pem, issuer, audiences, namespace, name, expires_in=3600, alg="RS256", kid=None,
             now=None, extra_claims=None):
    """A service-account token as Kubernetes mints one (bound token claims). expires_in may be
    negative (already expired); extra_claims override or add claims (None values remove one)."""
    now = int(now if now is not None else time.time())
    claims = {
        "aud": list(audiences),
        "exp": now + int(expires_in),
        "iat": now,
        "nbf": now,
        "iss": issuer,
        "kubernetes.io": {"namespace": namespace,
                          "serviceaccount": {"name": name, "uid": "00000000-0000-4000-8000-000000000001"}},
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    for k, v in (extra_claims or {}).items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, _bytes(private_key_pem), algorithm=alg, headers=headers)


def jwk_of(key_pem, kid=None):
    """The public JWK (a dict) of a PEM RSA or EC key, private or public."""
    public = public_key_of(key_pem)
    algorithm = RSAAlgorithm if hasattr(public, "public_numbers") and hasattr(public.public_numbers(), "n") \
        else ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(public))
    jwk.pop("key_ops", None)
    jwk["use"] = "sig"
    if kid:
        jwk["kid"] = kid
    return jwk


def _write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_jwks(path, keys):
    """Writes a JWKS for the offline mode; keys: [(pem, kid), ...] or [pem, ...]."""
    jwks = [jwk_of(*k) if isinstance(k, tuple) else jwk_of(k) for k in keys]
    _write_atomically(path, json.dumps({"keys": jwks}))


def write_service_accounts(path, accounts):
    """Writes the offline mode's service-accounts file from {(ns, name): {annotation: value}}
    (JSON, which is YAML)."""
    entries = [{"namespace": ns, "name": name, "annotations": dict(annotations)}
               for (ns, name), annotations in accounts.items()]
    _write_atomically(path, json.dumps({"serviceAccounts": entries}, indent=1))


class KubernetesApiStandIn:
    def __init__(self, cert, key, broker_token="broker-token", signing_key=None, issuer=DEFAULT_ISSUER,
                 api_audiences=None, host="127.0.0.1"):
        """cert, key: the server's PEM files. signing_key: the PEM (or path) of the key whose
        tokens are genuine, private or public; a list for several. api_audiences: what a review
        without audiences is checked against (the API server's own), default [issuer]."""
        self.cert, self.key, self.host = cert, key, host
        self.broker_token = broker_token
        keys = signing_key if isinstance(signing_key, list) else [signing_key] if signing_key else []
        self.signing_keys = [public_key_of(k) for k in keys]
        self.issuer = issuer
        self.api_audiences = list(api_audiences or [issuer])
        self.service_accounts = {}  # (namespace, name) -> {annotation: value}
        self.requests = []
        self.fail_status = None  # an HTTP status to answer every request with
        self.delay = 0.0  # seconds to wait before each answer
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"https://{self.host}:{self.port}"

    def start(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                stand_in._handle(self, "POST")

            def do_GET(self):
                stand_in._handle(self, "GET")

        self._server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        # The handshake happens in the request's thread, not in the accepting one.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def requests_to(self, path_prefix):
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    # The answers.

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append({"method": method, "path": handler.path, "headers": dict(handler.headers),
                                  "body": body.decode(errors="replace")})
            fail, delay = self.fail_status, self.delay
        if delay:
            time.sleep(delay)
        if fail:
            return self._send(handler, fail, self._status_object(fail, "InternalError", "told to fail"))
        if handler.headers.get("Authorization") != f"Bearer {self.broker_token}":
            return self._send(handler, 401, self._status_object(401, "Unauthorized", "Unauthorized"))
        if method == "POST" and handler.path == TOKEN_REVIEW_PATH:
            try:
                review = json.loads(body)
                assert review["apiVersion"] == "authentication.k8s.io/v1" and review["kind"] == "TokenReview"
                spec = review["spec"]
            except (ValueError, KeyError, AssertionError, TypeError):
                return self._send(handler, 400, self._status_object(400, "BadRequest", "not a TokenReview"))
            return self._send(handler, 201, self._review(spec))
        match = _ACCOUNT_PATH.match(handler.path)
        if method == "GET" and match:
            account = (match.group(1), match.group(2))
            with self._lock:
                annotations = self.service_accounts.get(account)
            if annotations is None:
                return self._send(handler, 404, self._status_object(
                    404, "NotFound", f'serviceaccounts "{account[1]}" not found'))
            return self._send(handler, 200, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": account[1], "namespace": account[0], "annotations": dict(annotations),
                             "uid": "00000000-0000-4000-8000-000000000001"}})
        return self._send(handler, 404, self._status_object(404, "NotFound", "the server could not find it"))

    def _review(self, spec):
        requested = spec.get("audiences") or self.api_audiences
        status = {"authenticated": False}
        claims, error = None, "[invalid bearer token, no key of its type verifies it]"
        for key in self.signing_keys:
            try:
                claims = jwt.decode(spec.get("token", ""), key, algorithms=["RS256", "ES256"], issuer=self.issuer,
                                    options={"verify_aud": False, "require": ["exp", "iss"]})
                break
            except (TypeError, ValueError):  # a key of another type than the token's alg
                continue
            except jwt.PyJWTError as e:
                error = f"[invalid bearer token, {e}]"
        if claims is not None:
            token_audiences = claims.get("aud", [])
            if isinstance(token_audiences, str):
                token_audiences = [token_audiences]
            both = [a for a in requested if a in token_audiences]
            k8s = claims.get("kubernetes.io", {})
            if not both:
                error = "[invalid bearer token, token audiences %s is invalid for the target audiences %s]" % (
                    json.dumps(token_audiences), json.dumps(requested))
            else:
                namespace, name = k8s.get("namespace"), k8s.get("serviceaccount", {}).get("name")
                status = {"authenticated": True, "audiences": both,
                          "user": {"username": f"system:serviceaccount:{namespace}:{name}",
                                   "uid": k8s.get("serviceaccount", {}).get("uid", ""),
                                   "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                              "system:authenticated"]}}
                error = None
        if error:
            status["error"] = error
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    @staticmethod
    def _status_object(code, reason, message):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason, "code": code}

    @staticmethod
    def _send(handler, status, obj):
        data = json.dumps(obj).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _self_check():
    import sys
    import urllib.error
    import urllib.request

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pki

    with tempfile.TemporaryDirectory() as folder:
        ca = pki.make_cert(folder, "ca", ca=True)
        server = pki.make_cert(folder, "api", parent=ca, sans=["IP:127.0.0.1", "DNS:localhost"])
        rsa = open(pki.make_key(os.path.join(folder, "sat-rsa.key"), "rsa")).read()
        ec = open(pki.make_key(os.path.join(folder, "sat-ec.key"), "ec")).read()
        context = ssl.create_default_context(cafile=ca.crt)

        def call(api, method, path, body=None, token="broker"):
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(api.url + path, data=data, method=method,
                                             headers={"Authorization": f"Bearer {token}",
                                                      "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, context=context, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        def review(api, token, audiences, broker="broker"):
            return call(api, "POST", TOKEN_REVIEW_PATH, {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": audiences}}, broker)

        with KubernetesApiStandIn(server.crt, server.key, broker_token="broker", signing_key=[rsa, ec]) as api:
            api.service_accounts[("ns1", "sa1")] = {"aio-broker-auth/group": "authz-sat"}
            for alg, key in (("RS256", rsa), ("ES256", ec)):
                token = mint_sat(key, api.issuer, ["aio-internal"], "ns1", "sa1", 600, alg=alg, kid="k")
                status, answer = review(api, token, ["aio-internal", "x"])
                assert status == 201 and answer["status"]["authenticated"], answer
                assert answer["status"]["user"]["username"] == "system:serviceaccount:ns1:sa1"
                assert answer["status"]["audiences"] == ["aio-internal"]
            assert not review(api, token, ["other"])[1]["status"]["authenticated"]
            expired = mint_sat(rsa, api.issuer, ["aio-internal"], "ns1", "sa1", -600)
            assert "expired" in review(api, expired, ["aio-internal"])[1]["status"]["error"]
            stranger = open(pki.make_key(os.path.join(folder, "other.key"), "rsa")).read()
            forged = mint_sat(stranger, api.issuer, ["aio-internal"], "ns1", "sa1", 600)
            assert not review(api, forged, ["aio-internal"])[1]["status"]["authenticated"]
            assert review(api, token, ["aio-internal"], broker="wrong")[0] == 401
            status, account = call(api, "GET", "/api/v1/namespaces/ns1/serviceaccounts/sa1")
            assert status == 200 and account["metadata"]["annotations"] == {"aio-broker-auth/group": "authz-sat"}
            assert call(api, "GET", "/api/v1/namespaces/ns1/serviceaccounts/nobody")[0] == 404
            api.fail_status = 500
            assert review(api, token, ["aio-internal"])[0] == 500
            api.fail_status, api.delay = None, 0.3
            started = time.monotonic()
            assert review(api, token, ["aio-internal"])[0] == 201 and time.monotonic() - started >= 0.3
            assert len(api.requests_to(TOKEN_REVIEW_PATH)) == 8

        write_jwks(os.path.join(folder, "jwks.json"), [(rsa, "r"), (ec, "e")])
        with open(os.path.join(folder, "jwks.json")) as f:
            keys = json.load(f)["keys"]
        assert [k["kty"] for k in keys] == ["RSA", "EC"] and keys[1]["crv"] == "P-256" and keys[0]["kid"] == "r"
        write_service_accounts(os.path.join(folder, "accounts.yaml"), {("ns1", "sa1"): {"aio-broker-auth/g": "v"}})
    print("k8s_api_server self-check: OK")


if __name__ == "__main__":
    _self_check()
