# Build stage: the same packages and commands as the README.
FROM debian:bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config libboost1.81-dev libssl-dev libyaml-cpp-dev libfmt-dev \
      libspdlog-dev catch2 ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build /build --target mqttd

# Runtime stage: the binary, its shared libraries, and a non-root user.
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libyaml-cpp0.7 libfmt9 libspdlog1.10 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/mqttd --create-home mqttd \
 && mkdir -p /etc/mqttd/config /etc/mqttd/secrets && chown -R mqttd /etc/mqttd
COPY --from=build /build/daemon/mqttd /usr/local/bin/mqttd
USER mqttd
EXPOSE 1883 8883 9600
ENTRYPOINT ["/usr/local/bin/mqttd"]
# In a container the port must face the pod network, not loopback. With resources mounted (a
# ConfigMap at /etc/mqttd/config, TLS secrets under /etc/mqttd/secrets/<name>/), run instead:
#   --config /etc/mqttd/config   (the defaults --secrets-dir /etc/mqttd/secrets and
#   --state-dir /var/lib/mqttd, the mqttd user's home, fit this image)
CMD ["--listen", "0.0.0.0:1883"]
