// MQTT.js over ws:// or wss://: subscribe, publish at QoS 1 (a payload of several frames' worth),
// and print what came back as JSON. Usage: node mqttjs_roundtrip.js URL [CAFILE] [PROTOCOL_VERSION]
const fs = require("fs");
const mqtt = require("mqtt");

const [url, cafile, version] = process.argv.slice(2);
const options = {
  clientId: "mqttjs-" + process.pid,
  protocolVersion: Number(version || 5),
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (cafile) options.ca = fs.readFileSync(cafile);

const payload = Buffer.alloc(200000, "m");
const client = mqtt.connect(url, options);
const timer = setTimeout(() => fail("timed out"), 10000);

function fail(message) {
  console.log(JSON.stringify({ ok: false, error: String(message) }));
  process.exit(1);
}

client.on("error", fail);
client.on("connect", (connack) => {
  client.subscribe("mqttjs/#", { qos: 1 }, (err, granted) => {
    if (err) return fail(err);
    client.publish("mqttjs/big", payload, { qos: 1 }, (perr) => {
      if (perr) fail(perr);
    });
  });
});
client.on("message", (topic, message) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ ok: message.equals(payload), topic, length: message.length }));
  client.end(false, () => process.exit(0));
});
