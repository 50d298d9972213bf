# Sluice as a container: a multi-stage build on Debian bookworm.
#   docker build -t sluice .
#   docker run --read-only -v "$PWD/pipelines:/pipelines:ro" -v "$PWD/udfs:/udfs:ro" -v sluice-data:/var/lib/sluice \
#     -p 9464:9464 sluice /pipelines/quickstart.yaml
# The pipeline's settings.admin.listen should be 0.0.0.0:${SLUICE_ADMIN_PORT:-9464} for the health check and probes.

# The Swift the project is tested with (override: --build-arg SWIFT_VERSION=6.1).
ARG SWIFT_VERSION=6.3
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config liblua5.4-dev libyaml-dev librdkafka-dev libcurl4-openssl-dev libmemcached-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift Package.resolved ./
RUN swift package resolve
COPY Sources Sources
# The Swift runtime and Foundation are linked in; only the Debian C libraries below stay shared.
RUN swift build -c release --product sluice --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/sluice" /out/sluice

FROM debian:bookworm-slim
# libcurl4 and libmemcached11 are not linked but opened (dlopen) when a pipeline uses HTTP or memcached.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      liblua5.4-0 libyaml-0-2 librdkafka1 libcurl4 libmemcached11 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sluice --shell /usr/sbin/nologin sluice \
 && mkdir -p /pipelines /udfs /var/lib/sluice/tmp \
 && chown -R 10001:10001 /var/lib/sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
# Non-root; UDF snapshots (hot reload) go to TMPDIR, inside the one writable volume.
USER 10001:10001
ENV TMPDIR=/var/lib/sluice/tmp SLUICE_LOG_FORMAT=json SLUICE_ADMIN_PORT=9464
WORKDIR /var/lib/sluice
VOLUME ["/pipelines", "/udfs", "/var/lib/sluice"]
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SLUICE_ADMIN_PORT:-9464} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["sluice", "run"]
CMD ["/pipelines/pipeline.yaml"]
