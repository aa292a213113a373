# syntax=docker/dockerfile:1
# Kommerce's images where a Docker engine runs (scripts/images.sh builds the same ones with podman
# from local binaries where none does). One build, one target per image:
#
#   docker build --target user -t kommerce/user:0.1.0 .
#   (targets: user item order pay review image operator cli web)
#
# The dependency layer is cached with cargo-chef: a change of our code rebuilds our crates only.
# The runtime stage is distroless in the strict sense: FROM scratch, the shared libraries the
# binaries need, CA certificates and a passwd entry for the nonroot user (uid/gid 65532) — no
# shell, no package manager. Base images are build arguments.

ARG RUST_IMAGE=rust:1-bookworm
ARG NODE_IMAGE=node:20-bookworm

FROM ${RUST_IMAGE} AS chef
RUN cargo install --locked cargo-chef
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir -p /out/bin \
    && for b in kommerce kommerce-operator kommerce-user kommerce-item kommerce-order kommerce-pay kommerce-review kommerce-image; do \
         cp "target/release/$b" /out/bin/; \
       done
# The runtime root: every library the binaries load, CA certificates, the nonroot user.
RUN mkdir -p /out/root/etc/ssl/certs /out/root/tmp && chmod 1777 /out/root/tmp \
    && cp /etc/ssl/certs/ca-certificates.crt /out/root/etc/ssl/certs/ \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/root/etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/root/etc/group \
    && for lib in $(ldd /out/bin/* | grep -o '/[^ ]*' | sort -u); do \
         mkdir -p "/out/root$(dirname "$lib")" && cp -L "$lib" "/out/root$lib"; \
       done

# The storefront's files: Node.js builds them, and stays in this stage.
FROM ${NODE_IMAGE} AS storefront
WORKDIR /src
COPY docs/openapi/kommerce.json docs/openapi/kommerce.json
COPY web/ web/
RUN cd web && npm ci --ignore-scripts --no-audit --no-fund && npm run build

FROM scratch AS base
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
COPY --from=builder /out/root/ /
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://kommerce.dev/source" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Kommerce"
USER 65532:65532
EXPOSE 8080

FROM base AS user
COPY --from=builder /out/bin/kommerce-user /usr/local/bin/kommerce-user
LABEL org.opencontainers.image.title="kommerce-user"
ENTRYPOINT ["/usr/local/bin/kommerce-user"]

FROM base AS item
COPY --from=builder /out/bin/kommerce-item /usr/local/bin/kommerce-item
LABEL org.opencontainers.image.title="kommerce-item"
ENTRYPOINT ["/usr/local/bin/kommerce-item"]

FROM base AS order
COPY --from=builder /out/bin/kommerce-order /usr/local/bin/kommerce-order
LABEL org.opencontainers.image.title="kommerce-order"
ENTRYPOINT ["/usr/local/bin/kommerce-order"]

FROM base AS pay
COPY --from=builder /out/bin/kommerce-pay /usr/local/bin/kommerce-pay
LABEL org.opencontainers.image.title="kommerce-pay"
ENTRYPOINT ["/usr/local/bin/kommerce-pay"]

FROM base AS review
COPY --from=builder /out/bin/kommerce-review /usr/local/bin/kommerce-review
LABEL org.opencontainers.image.title="kommerce-review"
ENTRYPOINT ["/usr/local/bin/kommerce-review"]

FROM base AS image
COPY --from=builder /out/bin/kommerce-image /usr/local/bin/kommerce-image
LABEL org.opencontainers.image.title="kommerce-image"
ENTRYPOINT ["/usr/local/bin/kommerce-image"]

FROM base AS operator
COPY --from=builder /out/bin/kommerce-operator /usr/local/bin/kommerce-operator
LABEL org.opencontainers.image.title="kommerce-operator"
ENTRYPOINT ["/usr/local/bin/kommerce-operator"]

FROM base AS cli
COPY --from=builder /out/bin/kommerce /usr/local/bin/kommerce
LABEL org.opencontainers.image.title="kommerce-cli"
ENTRYPOINT ["/usr/local/bin/kommerce"]

# The storefront: its built files served by `kommerce web`; no Node.js at run time.
FROM base AS web
COPY --from=builder /out/bin/kommerce /usr/local/bin/kommerce
COPY --from=storefront /src/web/dist/ /srv/web/
LABEL org.opencontainers.image.title="kommerce-web"
ENTRYPOINT ["/usr/local/bin/kommerce", "web", "--dir", "/srv/web"]
