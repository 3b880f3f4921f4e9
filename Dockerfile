# Multi-stage build of the herald broker.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin herald

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --shell /usr/sbin/nologin herald
COPY --from=build /src/target/release/herald /usr/local/bin/herald
USER herald
# Inside a container the broker must listen on all interfaces; set a password before exposing it.
ENV HERALD_BIND=0.0.0.0
EXPOSE 6379 7379
ENTRYPOINT ["/usr/local/bin/herald"]
