# syntax=docker/dockerfile:1
# ghsync: build the production binary (no fake GitHub, no demo: the `demo`
# feature is off), then run it as a non-root user on a small Debian image.
#
#   docker build -t ghsync .
#   docker run --rm -v ghsync-data:/data ghsync ghsync migrate     # optional init step
#   docker run -d -p 8080:8080 -v ghsync-data:/data --env-file ghsync.env ghsync
#   (ghsync.env: NAME=value lines, unquoted: docker keeps quotes as part of values)
#
# Configured by environment only (see the README's settings table); the
# SQLite file lives on the /data volume unless DATABASE_URL points elsewhere.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and compiled dependencies between builds;
# the binary is copied out in the same step, since the target dir is not in
# the layer. Cargo.toml keeps debug info in release builds (for profiling);
# the image does without it (134 MB → about 20 MB) but keeps the symbols, so
# a backtrace still names its functions.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features \
    && cp target/release/ghsync /usr/local/bin/ghsync

# Same Debian release as the build image, so the glibc the binary was linked
# against is the one it runs with.
FROM debian:bookworm-slim
# ca-certificates: TLS to GitHub and to PostgreSQL. curl: the HEALTHCHECK.
# Versions are not pinned: they come from the bookworm security updates, which
# we want.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ghsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin ghsync \
    && mkdir /data \
    && chown ghsync:ghsync /data
COPY --from=build /usr/local/bin/ghsync /usr/local/bin/ghsync

ENV DATABASE_URL=sqlite:///data/ghsync.db \
    GHSYNC_LISTEN=0.0.0.0:8080
VOLUME ["/data"]
WORKDIR /data
# Numeric, so `runAsNonRoot` checks (Kubernetes) can see it is not root.
USER 10001:10001
EXPOSE 8080
# /healthz answers 200 while the process lives. The shell takes the port from
# GHSYNC_LISTEN when the check runs (`${VAR##*:}`: what follows the last
# colon), so changing the listen address does not break the check; any
# failure is exit 1, which Docker reads as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${GHSYNC_LISTEN##*:}/healthz\" || exit 1"]
# ghsync handles SIGTERM itself (finish work in hand, then stop), so it can be
# PID 1; `docker run … ghsync migrate` (or reconcile) runs another command.
CMD ["ghsync", "serve"]
