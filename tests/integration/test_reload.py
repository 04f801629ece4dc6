"""Reloading the configuration without a restart: on a file change (inotify) or SIGHUP, added
ports open, removed ports close (v5 clients get DISCONNECT 0x8B), changed ports re-bind, unchanged
ports keep their clients, and an invalid configuration is refused while the running one stays."""
import os
import tempfile
import time
import unittest

from harness import Client, Daemon, free_port, main, port_open, wait_until

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"


def listener(ports, name="edge", service_type="LoadBalancer"):
    text = API + f"kind: BrokerListener\nmetadata: {{name: {name}}}\nspec:\n  serviceType: {service_type}\n  ports:\n"
    for port, protocol in ports:
        text += f"  - port: {port}\n    protocol: {protocol}\n"
    return text


class ReloadTest(unittest.TestCase):
    def test_added_removed_and_unchanged_ports(self):
        kept, removed, added = free_port(), free_port(), free_port()
        with Daemon(listener([(kept, "Mqtt"), (removed, "Mqtt")]), wait_for=f"port={removed} protocol=mqtt") as d:
            staying = Client(kept, client_id="staying")
            staying.subscribe("reload/#", qos=1)
            leaving_v5 = Client(removed, client_id="leaving-v5")
            leaving_v311 = Client(removed, client_id="leaving-v311", version=4)
            self.assertFalse(port_open(added))

            d.write_config(listener([(kept, "Mqtt"), (added, "Mqtt")]))
            d.wait_for_log("event=config_reloaded trigger=file_change")
            self.assertEqual(leaving_v5.disconnects.get(timeout=5), 0x8B)  # Server shutting down
            leaving_v311.disconnects.get(timeout=5)  # 3.1.1 has no DISCONNECT from the server: closed
            self.assertIn(f"event=port_closed listener=edge port={removed}", d.logs())
            wait_until(lambda: not port_open(removed), what="the removed port to close")
            newcomer = Client(added, client_id="newcomer")
            newcomer.publish("reload/x", b"through the new port", qos=1)
            self.assertEqual(staying.expect().payload, b"through the new port")
            self.assertTrue(staying.disconnects.empty(), "a client of an unchanged port was disconnected")
            for c in (staying, newcomer):
                c.disconnect()
            leaving_v5.client.loop_stop()
            leaving_v311.client.loop_stop()

    def test_the_command_line_port_stays_through_reloads(self):
        # A --listen port is one of the PortManager's ports (opened by the same code, after the
        # configured ones), but no configuration names it: a reload leaves it and its clients alone.
        configured, other = free_port(), free_port()
        with Daemon(listener([(configured, "Mqtt")]), wait_for=f"port={configured} protocol=mqtt") as d:
            log = d.wait_for_log(f"listener=--listen address=127.0.0.1 port={d.port} protocol=mqtt tls=none")
            self.assertLess(log.index(f"listener=edge address=127.0.0.1 port={configured} "),
                            log.index(f"listener=--listen address=127.0.0.1 port={d.port} "))
            staying = Client(d.port, client_id="cli-staying")
            staying.subscribe("cli/#", qos=1)
            d.write_config(listener([(other, "Mqtt")]))
            d.wait_for_log(f"event=port_closed listener=edge port={configured}")
            d.wait_for_log(f"port={other} protocol=mqtt")
            self.assertNotIn("listener=--listen port=", d.logs())
            newcomer = Client(d.port, client_id="cli-newcomer")
            newcomer.publish("cli/x", b"through the command-line port", qos=1)
            self.assertEqual(staying.expect().payload, b"through the command-line port")
            self.assertTrue(staying.disconnects.empty(), "a client of the --listen port was disconnected")
            for c in (staying, newcomer):
                c.disconnect()

    def test_a_changed_port_rebinds_and_its_clients_are_disconnected(self):
        changed, kept = free_port(), free_port()
        with Daemon(listener([(changed, "Mqtt"), (kept, "Mqtt")]), wait_for=f"port={kept} protocol=mqtt") as d:
            before = Client(changed, client_id="before")
            staying = Client(kept, client_id="staying")
            d.write_config(listener([(changed, "WebSockets"), (kept, "Mqtt")]))
            self.assertEqual(before.disconnects.get(timeout=5), 0x8B)
            d.wait_for_log(f"port={changed} protocol=websockets tls=none")
            after = Client(changed, transport="websockets", client_id="after")
            self.assertEqual(after.connack[1], 0)
            self.assertTrue(staying.disconnects.empty())
            after.disconnect()
            staying.disconnect()
            before.client.loop_stop()

    def test_an_invalid_configuration_is_refused_and_the_running_one_stays(self):
        port, other = free_port(), free_port()
        with Daemon(listener([(port, "Mqtt")]), wait_for=f"port={port} protocol=mqtt") as d:
            c = Client(port, client_id="steady")
            c.subscribe("steady/#", qos=1)
            # Two listeners with one service type: refused with its location; nothing changes.
            d.write_config(listener([(port, "Mqtt")], name="one") + "---\n" + listener([(other, "Mqtt")], name="two"))
            log = d.wait_for_log("event=config_rejected trigger=file_change")
            self.assertIn("BrokerListener/two.spec.serviceType: a second listener with serviceType LoadBalancer", log)
            self.assertIn("the running configuration stays", log)
            self.assertFalse(port_open(other))
            c.publish("steady/x", b"still served", qos=1)
            self.assertEqual(c.expect().payload, b"still served")
            self.assertTrue(c.disconnects.empty())
            # Fixed: applied.
            d.write_config(listener([(port, "Mqtt"), (other, "Mqtt")]))
            d.wait_for_log(f"port={other} protocol=mqtt")
            self.assertTrue(port_open(other))
            self.assertTrue(c.disconnects.empty())
            c.disconnect()

    def test_sighup_reloads_a_mounted_configmap_folder(self):
        """A folder as kubelet mounts a ConfigMap: files are symlinks into ..data, which is swapped."""
        port, added = free_port(), free_port()
        folder = tempfile.mkdtemp(prefix="mqttd-configmap-")

        def publish(text):
            stamp = os.path.join(folder, f"..{time.time_ns()}")
            os.makedirs(stamp)
            with open(os.path.join(stamp, "listener.yaml"), "w") as f:
                f.write(text)
            os.symlink(os.path.basename(stamp), os.path.join(folder, "..data_tmp"))
            os.rename(os.path.join(folder, "..data_tmp"), os.path.join(folder, "..data"))
            link = os.path.join(folder, "listener.yaml")
            if not os.path.islink(link):
                os.symlink("..data/listener.yaml", link)

        publish(listener([(port, "Mqtt")]))
        with Daemon(config_path=folder, wait_for=f"port={port} protocol=mqtt") as d:
            c = Client(port, client_id="cm")
            publish(listener([(port, "Mqtt"), (added, "Mqtt")]))
            d.wait_for_log(f"port={added} protocol=mqtt")
            d.sighup()
            d.wait_for_log("event=config_reloaded trigger=sighup")
            self.assertTrue(c.disconnects.empty())
            c.disconnect()

    def test_broker_settings_need_a_restart_and_say_so(self):
        port = free_port()
        broker = API + "kind: Broker\nmetadata: {name: default}\nspec:\n  advanced: {clients: {maxKeepAliveSeconds: 100}}\n"
        with Daemon(broker + "---\n" + listener([(port, "Mqtt")]), wait_for=f"port={port} protocol=mqtt") as d:
            d.write_config(broker.replace("100", "200") + "---\n" + listener([(port, "Mqtt")]))
            d.wait_for_log("event=config_restart_needed")

    def test_workers_from_the_command_line_are_not_a_change(self):
        """The daemon runs with --workers (as every test daemon does): a reload of a file that
        sets no workers, or other workers, changes nothing that needs a restart."""
        port, added = free_port(), free_port()
        with Daemon(listener([(port, "Mqtt")]), wait_for=f"port={port} protocol=mqtt") as d:
            d.write_config(listener([(port, "Mqtt"), (added, "Mqtt")]))
            d.wait_for_log(f"port={added} protocol=mqtt")
            d.wait_for_log("event=config_reloaded")
            self.assertNotIn("config_restart_needed", d.logs())


if __name__ == "__main__":
    main()
