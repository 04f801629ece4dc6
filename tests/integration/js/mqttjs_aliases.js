// MQTT.js with Topic Alias Maximum 10: publishes to two topics in turn and prints the topics it
// received (MQTT.js restores a topic from the broker's alias) as JSON. Usage: node mqttjs_aliases.js URL
const mqtt = require("mqtt");

const client = mqtt.connect(process.argv[2], {
  clientId: "mqttjs-aliases-" + process.pid,
  protocolVersion: 5,
  reconnectPeriod: 0,
  connectTimeout: 5000,
  properties: { topicAliasMaximum: 10 },
});
const timer = setTimeout(() => done({ ok: false, error: "timed out" }), 10000);
const received = [];
const aliases = [];

function done(result) {
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  client.end(true);
}

client.on("error", (e) => done({ ok: false, error: String(e) }));
client.on("message", (topic, payload, packet) => {
  received.push(topic);
  aliases.push(packet.properties && packet.properties.topicAlias ? packet.properties.topicAlias : 0);
  if (received.length === 6) done({ ok: true, received, aliases });
});
client.on("connect", () => {
  client.subscribe("al/#", { qos: 0 }, (err) => {
    if (err) return done({ ok: false, error: String(err) });
    for (let i = 0; i < 6; i++) client.publish(i % 2 ? "al/y" : "al/x", "m" + i, { qos: 0 });
  });
});
