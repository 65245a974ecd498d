# berth's container image, built from source: `docker build -t berth .`
# The runtime stage is deploy/image/Dockerfile.runtime's (tests/interop/image.rs
# checks the two stay the same); scripts/build-image.sh builds that stage from
# a locally built binary where the Rust image below cannot be pulled.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# .git is not copied: pass the commit for `berth --version`
# (docker build --build-arg BERTH_GIT_COMMIT=$(git rev-parse --short HEAD) .).
ARG BERTH_GIT_COMMIT=unknown
RUN BERTH_GIT_COMMIT="$BERTH_GIT_COMMIT" cargo build --release --locked \
 && bash scripts/image-rootfs.sh target/release/berth /rootfs

FROM scratch
COPY --from=build /rootfs/ /
# The data directory belongs to the user berth runs as, so a named volume
# created from it is writable.
COPY --from=build --chown=65532:65532 /rootfs/var/lib/ /var/lib/
USER 65532:65532
EXPOSE 5000
VOLUME ["/var/lib/registry"]
ENV REGISTRY_CONFIGURATION_PATH=/etc/docker/registry/config.yml
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 CMD ["/usr/bin/berth", "healthcheck"]
ENTRYPOINT ["/usr/bin/berth"]
CMD ["serve"]
