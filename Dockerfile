# Multi-stage build of the herald broker.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin herald

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --shell /usr/sbin/nologin herald \
 && mkdir -p /data && chown herald /data
COPY --from=build /src/target/release/herald /usr/local/bin/herald
USER herald
# Persistence on: the append-only log and snapshots live in the /data volume (docs/durability.md).
VOLUME /data
ENV HERALD_PERSISTENCE__DATA_DIR=/data
# Inside a container the broker must listen on all interfaces; set a password before exposing it.
ENV HERALD_BIND=0.0.0.0
EXPOSE 6379 7379
ENTRYPOINT ["/usr/local/bin/herald"]
