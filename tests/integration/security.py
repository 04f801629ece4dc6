"""Helpers for the authentication and authorization tests: password files written by the real
`mqttd passwd`, and YAML for BrokerAuthentication/BrokerAuthorization resources."""
import os
import subprocess
import tempfile

from harness import BINARY, Daemon, mqtt_string, packet

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"


def passwd(secrets_dir, secret, username, password, **attributes):
    """Adds a user with `mqttd passwd` (the password on standard input)."""
    folder = os.path.join(secrets_dir, secret)
    os.makedirs(folder, exist_ok=True)
    args = [BINARY, "passwd", os.path.join(folder, "passwords"), username]
    for k, v in attributes.items():
        args += ["--attribute", f"{k}={v}"]
    r = subprocess.run(args, input=password + "\n", capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def listener(ports, name="secure", service_type="LoadBalancer"):
    """ports: list of dicts with port, and optional authn, authz, tls (raw YAML lines)."""
    text = API + f"kind: BrokerListener\nmetadata: {{name: {name}}}\nspec:\n  serviceType: {service_type}\n  ports:\n"
    for p in ports:
        text += f"  - port: {p['port']}\n"
        if p.get("authn"):
            text += f"    authenticationRef: {p['authn']}\n"
        if p.get("authz"):
            text += f"    authorizationRef: {p['authz']}\n"
        if p.get("tls"):
            text += p["tls"]
    return text


def authentication(name, methods_yaml):
    return API + f"kind: BrokerAuthentication\nmetadata: {{name: {name}}}\nspec:\n  authenticationMethods:\n" + methods_yaml


PASSWORD_METHOD = "  - method: Password\n    passwordSettings: {secretRef: mqtt-users}\n"


def authorization(name, rules_yaml):
    return (API + f"kind: BrokerAuthorization\nmetadata: {{name: {name}}}\nspec:\n  authorizationPolicies:\n"
            "    cache: Enabled\n    rules:\n" + rules_yaml)


def documents(*docs):
    return "---\n".join(docs)


def subscribe_many(raw, filters, packet_id=1):
    """One SUBSCRIBE with several filters (QoS 1 each); returns the SUBACK reason codes."""
    body = packet_id.to_bytes(2, "big")
    if raw.version == 5:
        body += b"\x00"
    for f in filters:
        body += mqtt_string(f) + b"\x01"
    raw.send(packet(0x82, body))
    kind, _, ack = raw.read_packet()
    assert kind == 9, f"expected SUBACK, got {kind}"
    return list(ack[3:] if raw.version == 5 else ack[2:])


def publish_ack(raw, topic, payload=b"x", qos=1, packet_id=1):
    """Publishes at QoS 1 or 2 and returns (ack type, reason code)."""
    raw.publish(topic, payload, qos=qos, packet_id=packet_id)
    kind, _, body = raw.read_packet()
    reason = body[2] if len(body) > 2 else 0
    if qos == 2 and kind == 5:
        raw.send(packet(0x62, packet_id.to_bytes(2, "big")))
        kind2, _, _ = raw.read_packet()
        assert kind2 == 7, f"expected PUBCOMP, got {kind2}"
    return kind, reason


def daemon_with_users(config, users, secret="mqtt-users", **kwargs):
    """The daemon, with a password file (users: (name, password[, attributes])) written before it
    starts, in a secrets folder of its own."""
    secrets = tempfile.mkdtemp(prefix="mqttd-secrets-")
    for user in users:
        passwd(secrets, secret, user[0], user[1], **(user[2] if len(user) > 2 else {}))
    d = Daemon(config, extra_args=["--secrets-dir", secrets], **kwargs)
    d.secrets_dir = secrets
    return d
