# csp-operator image:  docker build -t ghcr.io/csp-operator/csp-operator:0.1.0 .
# Build stage: the release binary from the locked dependency graph.
FROM rust:1.95 AS builder
WORKDIR /src
# The whole crate (see .dockerignore), so every target Cargo.toml declares is present.
COPY . .
RUN cargo build --release --locked --bin csp-operator

# Runtime: glibc and CA certificates only; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/csp-operator /usr/local/bin/csp-operator
# The image's "nonroot" user, numeric so that the kubelet can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/csp-operator"]
CMD ["run"]
