# The ping-roach service as a small image: a builder stage compiles the
# release binary, and the runtime stage holds that binary alone, run as a
# non-root user on distroless.
#
#   docker build -t ping-roach .
#   docker compose up -d --build      (see compose.yaml)
#
# The builder's Debian release must stay the runtime's (bookworm, Debian 12):
# the binary links that release's glibc and OpenSSL 3, which
# gcr.io/distroless/cc-debian12 provides. libpq and SQLite are compiled into
# the binary (the `bundled` features of pq-sys and libsqlite3-sys), so the
# runtime needs neither. ci/check-binary-libs.sh checks that list.

# The toolchain is pinned to a release no older than the crate's
# rust-version in Cargo.toml.
FROM rust:1.95-bookworm AS chef
# cargo-chef turns the manifests into a recipe, so that the dependencies are
# compiled in a layer of their own that only Cargo.toml or Cargo.lock can
# invalidate: editing src/ rebuilds the crate alone.
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
# The crate itself, with migrations/ (embed_migrations! reads it at compile
# time) and diesel.toml; .dockerignore keeps target/, .git, .env and the
# like out.
COPY . .
RUN cargo build --release --locked --bin ping-roach \
    && install -D --mode=0755 target/release/ping-roach /out/ping-roach

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/ping-roach /usr/local/bin/ping-roach
ENV HTTP_PORT=8080
EXPOSE 8080
# Distroless has no shell and no curl: the binary checks GET /ping itself.
# The start period covers the service's own wait for its database (up to
# 60 s, CONNECT_TIMEOUT_SECS).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/ping-roach", "healthcheck"]
# The nonroot user of the distroless image, by number so that a runtime can
# tell it is not root without reading /etc/passwd.
USER 65532:65532
# Exec form: the binary is PID 1 and stops gracefully on SIGTERM.
ENTRYPOINT ["/usr/local/bin/ping-roach"]
CMD ["serve"]
