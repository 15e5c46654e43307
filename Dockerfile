# syntax=docker/dockerfile:1
#
# nats-mini container images, multi-arch (linux/amd64, linux/arm64). Rust cross-compiles on the
# build host (no emulation) to static glibc binaries; the runtime is distroless/static (no shell,
# no package manager, CA certificates and a "nonroot" user 65532).
#
# Why glibc and not musl: the message path copies many small pieces (a MSG line per delivery),
# and musl's memcpy (rep movsq, byte loops for the ends; 55 % of the server's time in a fanout
# profile) made delivery three to five times slower than the same code on glibc (pubsub 16 B
# 3.4 M msgs/s against 9.4 M, fanout 4.3 M against 19.8 M; mimalloc in place of musl's malloc
# did not help; BENCHMARKS.md, "The image's libc"). Static glibc keeps the image static (start to
# ready 2.4 ms against musl's 2.0) and resolves names with the NSS files and dns modules that
# glibc 2.34+ builds in.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -t ghcr.io/nats-mini/nats-mini:0.1.0 .                        # the broker (default target)
#   docker buildx build --platform linux/amd64,linux/arm64 --target operator \
#     -t ghcr.io/nats-mini/nats-mini-operator:0.1.0 .               # the operator
#
# The size settings live in the workspace's [profile.release] (lto = "fat", codegen-units = 1,
# panic = "abort", strip = true, opt-level = 3). panic = "abort" is right for the broker: a
# panic is a bug, the process exits and Kubernetes restarts it, and no unwinding tables are
# shipped. operator/tests/chart_image.rs builds the same static release binary for the host's
# architecture, checks its size, that it is static, and that it starts.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- toolchain: the build host's Rust plus a C cross compiler for the target ---------------
# ring (TLS) has C and assembly, so the target needs a C compiler too. Linking uses the gcc of
# the target's architecture and its static glibc (crt-static), giving static binaries.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS toolchain
ARG TARGETARCH
ARG BUILDARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The cross compiler's version is the one of the base image's Debian release.
# hadolint ignore=DL3008
RUN case "$TARGETARCH" in \
      amd64) triple="x86_64-unknown-linux-gnu"; gcc="gcc-x86-64-linux-gnu"; libc="libc6-dev-amd64-cross" ;; \
      arm64) triple="aarch64-unknown-linux-gnu"; gcc="gcc-aarch64-linux-gnu"; libc="libc6-dev-arm64-cross" ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH' (amd64 or arm64)" >&2; exit 1 ;; \
    esac \
 && if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends "$gcc" "$libc" \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && rustup target add "$triple" \
 && echo "$triple" > /rust-target
# The build host's own gcc answers to its triplet name as well (x86_64-linux-gnu-gcc on amd64,
# aarch64-linux-gnu-gcc on arm64), so these work for native and cross builds alike; libc6-dev
# (native) and libc6-dev-*-cross hold the static libc.a that crt-static links in.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .

# ---- build-broker: /nats-mini, and nats-server linked to it ----------------------------------
# The link makes the image a drop-in for nats-server: the official NATS Helm chart's preStop
# runs `nats-server -sl=ldm=PIDFILE`, and scripts call nats-server by name.
FROM toolchain AS build-broker
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" -p nats-mini --bin nats-mini \
 && mkdir -p /out/usr/local/bin \
 && cp "target/$target/release/nats-mini" /out/nats-mini \
 && ln -s /nats-mini /out/usr/local/bin/nats-server \
 && ln -s /nats-mini /out/usr/local/bin/nats-mini

# ---- build-operator: /nats-mini-operator -----------------------------------------------------
FROM toolchain AS build-operator
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" -p nats-mini-operator --bin nats-mini-operator \
 && mkdir -p /out \
 && cp "target/$target/release/nats-mini-operator" /out/nats-mini-operator

# ---- operator: the operator image (--target operator) -----------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS operator
LABEL org.opencontainers.image.title="nats-mini-operator" \
      org.opencontainers.image.description="Kubernetes operator for nats-mini clusters (NatsMini resources)" \
      org.opencontainers.image.source="https://github.com/nats-mini/nats-mini" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-operator /out/ /
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nats-mini-operator"]

# ---- broker: the broker image (the default target, so it comes last) --------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS broker
LABEL org.opencontainers.image.title="nats-mini" \
      org.opencontainers.image.description="A high-performance, memory-only Core NATS server" \
      org.opencontainers.image.source="https://github.com/nats-mini/nats-mini" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-broker /out/ /
USER 65532:65532
# Errors only by default; the Kubernetes objects set NATS_LOG from the spec's logLevel.
ENV NATS_LOG=error
# Clients, routes (cluster), monitoring.
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-mini"]
