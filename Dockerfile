# Multi-stage build: compile with the Rust toolchain, run on a slim base as a non-root user.
#   docker build -t sluice .
#   docker run --rm sluice                                   # the quickstart pipeline, JSON logs
#   docker run --rm -p 9090:9090 -e KAFKA_BROKERS=broker:9092 sluice \
#     run --log-format json --metrics-addr 0.0.0.0:9090 /etc/sluice/pipelines/kafka-to-kafka.yaml
# Lint: hadolint Dockerfile (scripts/check-deploy.sh runs it).
FROM rust:1.95-slim-bookworm AS build
# librdkafka is compiled from source by the rdkafka crate (cmake), with TLS, SASL and compression.
# Versions are not pinned: bookworm's point releases replace them (a pinned version disappears
# from the mirror), and the Rust toolchain is already pinned by the image tag.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config libssl-dev zlib1g-dev \
      libzstd-dev libcurl4-openssl-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The image's binary is stripped (39 MB against 274 MB with line tables; panic messages still name
# their file and line). Set before the first build, so the dependency layer has the same profile.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols
# Dependencies first, in their own layer, so code changes do not rebuild them. Cargo.toml declares
# [[bench]] targets and two workspace members (the test helpers, the layout gate): cargo refuses a
# manifest whose declared target file or member is missing, so stubs stand in for them (none is
# built by `cargo build`; the stubs stay for the second build).
COPY Cargo.toml Cargo.lock ./
COPY testkit/Cargo.toml testkit/
COPY scripts/layout/Cargo.toml scripts/layout/
RUN mkdir -p src benches testkit/src scripts/layout/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs testkit/src/lib.rs \
 && echo 'fn main() {}' > scripts/layout/src/main.rs \
 && for b in transform suite; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo build --release --locked \
 && rm -rf src
COPY src src
# COPY keeps the build context's timestamps, which may be older than the stub build: touch so
# cargo rebuilds the crate itself (dependencies stay cached).
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
# The binary links only libssl3/libcrypto3 and zlib dynamically (zstd and librdkafka are static;
# check with `ldd /usr/local/bin/sluice`); ca-certificates for TLS to the brokers.
# Versions are not pinned, for the same reason as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
# Example pipelines; Kubernetes mounts its own over this directory (see k8s/).
COPY pipelines /etc/sluice/pipelines
# Numeric user, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
# /metrics, /health/live, /health/ready when run with --metrics-addr 0.0.0.0:9090.
EXPOSE 9090
# sluice is PID 1 and handles SIGTERM itself: it turns not-ready, stops reading, delivers what is
# in flight, commits offsets and exits 0 within the pipelines' settings.shutdown_timeout.
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["run", "--log-format", "json", "--metrics-addr", "0.0.0.0:9090", "/etc/sluice/pipelines/quickstart.yaml"]
