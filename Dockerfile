# Builds the keel binary and runs it on a slim base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The build compiles the plugins to WebAssembly components (core/plugins/build.rs).
RUN rustup target add wasm32-wasip2 && cargo build --release -p keel

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/keel /usr/local/bin/keel
RUN useradd --system --home /var/lib/keel --create-home keel
USER keel
WORKDIR /var/lib/keel
EXPOSE 8080
ENTRYPOINT ["keel"]
CMD ["serve"]
