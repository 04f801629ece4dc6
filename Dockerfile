# mqttd container image: built from source in a build stage, run from a slim runtime stage as a
# non-root user. `scripts/build-image` builds it with podman against a locally bootstrapped Debian
# base (no registry needed); with Docker and Docker Hub, `docker build .` uses the defaults below.
# docs/operations.md, "Container image", has the commands, the size and the checks.
ARG BUILD_BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

# Build stage: the same packages and commands as the README (without the test-only ones).
FROM ${BUILD_BASE} AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build ccache pkg-config libboost1.81-dev libssl-dev libyaml-cpp-dev \
      libfmt-dev libspdlog-dev ca-certificates && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /src
COPY . .
# JOBS: parallel compile jobs (empty: one per core). The compiler cache lives in a cache mount, so
# a rebuild after a source change recompiles only what changed (BuildKit and podman/buildah).
ARG JOBS=
RUN --mount=type=cache,target=/ccache \
    export CCACHE_DIR=/ccache && ccache --zero-stats >/dev/null \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build /build --target mqttd ${JOBS:+--parallel $JOBS} \
 && ccache --show-stats | head -n 4 \
 && strip /build/daemon/mqttd

# Runtime stage: the binary, its shared libraries, and a non-root user.
FROM ${RUNTIME_BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libyaml-cpp0.7 libfmt9 libspdlog1.10 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid 10001 mqttd \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/mqttd --create-home \
      --shell /usr/sbin/nologin mqttd \
 && mkdir -p /etc/mqttd/config /etc/mqttd/secrets && chown -R mqttd:mqttd /etc/mqttd
COPY --from=build /build/daemon/mqttd /usr/local/bin/mqttd
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 1883 MQTT, 8883 MQTT over TLS, 9600 Prometheus metrics and probes. No HEALTHCHECK: Kubernetes
# probes the pod itself.
EXPOSE 1883 8883 9600
ENTRYPOINT ["/usr/local/bin/mqttd"]
# In a container the port must face the pod network, not loopback. With resources mounted (a
# ConfigMap at /etc/mqttd/config, TLS secrets under /etc/mqttd/secrets/<name>/), run instead:
#   --config /etc/mqttd/config   (the defaults --secrets-dir /etc/mqttd/secrets and
#   --state-dir /var/lib/mqttd, the mqttd user's home, fit this image)
CMD ["--listen", "0.0.0.0:1883"]
