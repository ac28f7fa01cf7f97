# wsgate image: build with the Rust toolchain, run as non-root on distroless (glibc, no shell).
#   docker build -t wsgate .
#   docker run -p 8080:8080 -p 9901:9901 -v "$PWD/my.yaml:/etc/wsgate/wsgate.yaml:ro" wsgate
# Probes: GET /healthz and /readyz on the admin port 9901 (no shell or curl in the image, so no
# HEALTHCHECK instruction: Kubernetes and load balancers probe over HTTP; see deploy/kubernetes/).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every workspace member must be present for cargo to load the workspace.
COPY proto ./proto
COPY bench ./bench
COPY src ./src
COPY config ./config
RUN cargo build --release --locked --bin wsgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/wsgate /usr/local/bin/wsgate
COPY config/docker.yaml /etc/wsgate/wsgate.yaml
# distroless's "nonroot" user, by number so that runtimes can check it is not root.
USER 65532:65532
# 8080: the WebSocket/HTTP listener; 9901: admin (/metrics, /healthz, /readyz).
EXPOSE 8080 9901
# SIGTERM drains: tunnels get close frames spread over shutdown.drain_timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wsgate"]
CMD ["--config", "/etc/wsgate/wsgate.yaml", "--log-format", "json"]
