# mcpgate as a container: built by scripts/build-release (the same script CI runs), run as a
# non-root user on a slim runtime image. Every setting comes from MCPGATE_* variables (see
# `mcpgate serve --help`); the policy is mounted at /etc/mcpgate/policy.json.
#
#   docker build -t mcpgate .
#   docker run -p 8080:8080 -p 9090:9090 -v "$PWD/policies/binance.json:/etc/mcpgate/policy.json:ro" \
#     -e MCPGATE_UPSTREAM=http://mcp-server:9000/mcp -e MCPGATE_AGENTS=bot=sha256:… mcpgate

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/build-release /out

# glibc and libgcc only: TLS roots are compiled in (webpki-roots), so no CA bundle is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/mcpgate /usr/local/bin/mcpgate
COPY --from=build /out/policies/ /usr/share/mcpgate/policies/
ENV MCPGATE_LISTEN=0.0.0.0:8080 \
    MCPGATE_METRICS_LISTEN=0.0.0.0:9090 \
    MCPGATE_POLICY=/etc/mcpgate/policy.json \
    MCPGATE_LOG_FORMAT=json \
    MCPGATE_REQUIRE_AUTH=true
# distroless's nonroot user (65532), named by number so that runAsNonRoot can check it.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/mcpgate"]
CMD ["serve"]
