# syntax=docker/dockerfile:1
# Multi-stage build of both binaries (the API `minifig` and the worker `factory`) into one
# small runtime image; docker-compose.yml picks the command.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build directory between builds, so a code change
# rebuilds only our crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p minifig -p factory \
    && mkdir -p /out && cp target/release/minifig target/release/factory /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/minifig --create-home minifig
COPY --from=build /out/minifig /out/factory /usr/local/bin/
USER minifig
WORKDIR /var/lib/minifig
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000
CMD ["minifig", "serve"]
