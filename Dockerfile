# The herald broker as a container image (docs/operations.md). Two stages: a release build on the Rust
# image, then a slim Debian runtime with only the binary, run as a non-root user.
#
#   docker build -t herald .
#   docker run -d -p 6379:6379 -p 7379:7379 -v herald-data:/data -e HERALD_REQUIREPASS=secret herald
#
# tests/e2e/container.sh builds and runs this file unchanged (with local stand-ins for the two base images,
# scripts/container-base-images.sh, where no registry is reachable).

FROM rust:1.95-bookworm AS build
WORKDIR /src

# The dependencies first, from the manifests and empty crate roots alone, so this layer (the crates.io
# downloads and their compiled code, about half the build) is reused until Cargo.toml or Cargo.lock
# change. Cargo reads every workspace member's manifest and the files its explicit targets name: a new
# [[bench]] or [[bin]] with a path of its own needs its stub here.
COPY Cargo.toml Cargo.lock ./
COPY protocol/Cargo.toml protocol/
COPY broker/Cargo.toml broker/
COPY bench/Cargo.toml bench/
RUN mkdir -p protocol/src broker/src bench/src bench/benches \
 && touch protocol/src/lib.rs broker/src/lib.rs bench/src/lib.rs bench/benches/codec.rs bench/benches/keyspace.rs \
 && echo 'fn main() {}' > broker/src/main.rs \
 && cargo build --release --locked --bin herald

# Then the sources the binary is made of (the broker compiles in the JavaScript client and its example
# page); the benchmarks' stubs above stand, so a change there rebuilds nothing. COPY keeps the files'
# modification times, which can be older than the stubs' build: touch them so cargo compiles them.
COPY protocol protocol
COPY broker broker
COPY clients/js clients/js
RUN find protocol broker -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin herald

FROM debian:bookworm-slim
# A fixed uid and gid, so a host directory mounted at /data can be given to them (chown 10001:10001).
RUN groupadd --system --gid 10001 herald \
 && useradd --system --uid 10001 --gid herald --no-create-home --home-dir /data --shell /usr/sbin/nologin herald \
 && mkdir -p /data /etc/herald \
 && chown herald:herald /data
COPY --from=build /src/target/release/herald /usr/local/bin/herald
USER 10001:10001
WORKDIR /data

# Persistence on: the append-only log and snapshots live in the /data volume (docs/durability.md), so
# keys, jobs, boards, mailboxes and streams survive `docker restart` and a new container on the volume.
VOLUME /data
ENV HERALD_PERSISTENCE__DATA_DIR=/data
# Inside a container the broker listens on every interface, or published ports would reach nothing. Set
# a password (HERALD_REQUIREPASS, or requirepass in a config file mounted at HERALD_CONFIG): without one
# the broker refuses to start exposed (docs/security.md; HERALD_INSECURE=true overrides). Every other setting: HERALD_<KEY> variables or the config file (docs/config.md).
ENV HERALD_BIND=0.0.0.0
# RESP (Redis protocol) and HTTP (WebSocket /ws, /healthz, /readyz): the defaults in broker/src/default.toml.
EXPOSE 6379 7379
# RESP over TLS and HTTPS/WSS, served when TLS is on: HERALD_TLS__ENABLED=true with a certificate and key
# mounted into the container (HERALD_TLS__CERT_FILE, HERALD_TLS__KEY_FILE; docs/security.md, "TLS").
EXPOSE 6380 7380

# The image carries no curl: the binary asks its own HTTP port for /healthz, reading the same
# configuration (HERALD_HTTP_PORT, HERALD_CONFIG) as the broker.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["herald", "--healthcheck"]

# SIGTERM starts the graceful shutdown: connections are told and closed, then the log is written and
# fsynced before the process exits 0. It waits up to shutdown_timeout_ms (5 s by default) for
# connections, within docker stop's default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["herald"]
