"""Certificates for the tests, made with the openssl command: roots, intermediates and leaves
(EC or RSA), TLS secret folders as Kubernetes mounts them, and kubelet's atomic update."""
import os
import subprocess
import tempfile
import time


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_key(path, kind="ec"):
    if kind == "ec":
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    else:
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    return path


class Cert:
    def __init__(self, crt, key, name):
        self.crt, self.key, self.name = crt, key, name

    def pem(self):
        with open(self.crt) as f:
            return f.read()


def make_cert(folder, name, parent=None, ca=False, sans=(), kind="ec", days=365, subject=None):
    """A certificate named `name` (CN, unless `subject` gives the whole subject, UTF-8 allowed),
    signed by `parent` (a Cert) or self-signed."""
    key = make_key(os.path.join(folder, f"{name}.key"), kind)
    crt = os.path.join(folder, f"{name}.crt")
    subject = subject or f"/CN={name}"
    ext = os.path.join(folder, f"{name}.ext")
    with open(ext, "w") as f:
        if ca:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n")
        else:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        if sans:
            f.write("subjectAltName=" + ",".join(sans) + "\n")
        f.write("subjectKeyIdentifier=hash\n")
    if parent is None:
        _run("req", "-utf8", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(days), "-out", crt,
             "-extensions", "v3", "-config", _req_config(folder, ext))
    else:
        csr = os.path.join(folder, f"{name}.csr")
        _run("req", "-utf8", "-new", "-key", key, "-subj", subject, "-out", csr)
        _run("x509", "-req", "-in", csr, "-CA", parent.crt, "-CAkey", parent.key, "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", str(days), "-extfile", ext, "-out", crt)
    return Cert(crt, key, name)


def _req_config(folder, ext):
    path = os.path.join(folder, "req.cnf")
    with open(ext) as f:
        extensions = f.read()
    with open(path, "w") as f:
        f.write("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" + extensions)
    return path


def seed_chain(folder, kind="ec", leaf_name="mqtts-endpoint"):
    """The seed's Step CLI walkthrough: a root, an intermediate, and a server certificate with
    SANs mqtts-endpoint and localhost. Returns (root, intermediate, leaf)."""
    root = make_cert(folder, "root_ca", ca=True, subject="/CN=Example Root CA", kind=kind)
    intermediate = make_cert(folder, "intermediate_ca", parent=root, ca=True, subject="/CN=Example Intermediate CA",
                             kind=kind)
    leaf = make_cert(folder, leaf_name, parent=intermediate,
                     sans=("DNS:mqtts-endpoint", "DNS:localhost", "IP:127.0.0.1"), kind=kind)
    return root, intermediate, leaf


def write_secret(secrets_dir, name, chain, key_file):
    """A TLS secret as kubelet mounts it: <name>/..data -> ..<stamp>/, tls.crt -> ..data/tls.crt.
    Writing it again swaps ..data atomically, as kubelet does on a secret update."""
    secret = os.path.join(secrets_dir, name)
    os.makedirs(secret, exist_ok=True)
    stamp = os.path.join(secret, f"..{time.time_ns()}")
    os.makedirs(stamp)
    with open(os.path.join(stamp, "tls.crt"), "w") as f:
        f.write("".join(c.pem() for c in chain))
    with open(key_file) as src, open(os.path.join(stamp, "tls.key"), "w") as f:
        f.write(src.read())
    tmp_link = os.path.join(secret, "..data_tmp")
    os.symlink(os.path.basename(stamp), tmp_link)
    os.rename(tmp_link, os.path.join(secret, "..data"))
    for file in ("tls.crt", "tls.key"):
        link = os.path.join(secret, file)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", file), link)
    return secret


def served_chain(port, extra=()):
    """The subjects and issuers that `openssl s_client -showcerts` reports, in order, and its output."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts", *extra],
                       input="", capture_output=True, text=True, timeout=10)
    lines = [l.strip() for l in r.stdout.splitlines()]
    subjects = [l.split("s:", 1)[1] for l in lines if len(l) > 2 and l[0].isdigit() and " s:" in l]
    return subjects, r.stdout + r.stderr


def server_certificate(port):
    """The server certificate's PEM as served on `port`."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"], input="", capture_output=True,
                       text=True, timeout=10)
    out = r.stdout
    start = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    return out[start:end + 25] if start >= 0 else ""


def describe(pem, *fields):
    """`openssl x509 -noout <fields>` on a PEM text."""
    r = subprocess.run(["openssl", "x509", "-noout", *fields], input=pem, capture_output=True, text=True,
                       check=True)
    return r.stdout
