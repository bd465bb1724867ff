# The release image: the static retention binary, CA certificates and a passwd/group entry for the
# non-root user, on no base image at all. No shell, no package manager, no C library; the binary
# embeds the time zone database.
#
# Build it with `make image` (scripts/image.sh), which builds the binary with CGO_ENABLED=0 and puts
# it, this file, the CA bundle and the passwd/group files into a build context of their own. The
# repository root is not a build context: `docker build .` there has no binary to copy.
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="convai-retention" \
      org.opencontainers.image.description="Deletes expired Convai chat sessions and records every outcome in PostgreSQL" \
      org.opencontainers.image.version="${VERSION}"

COPY passwd group /etc/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY retention /retention
# Numeric, so that runAsNonRoot can verify it; the manifests run as the same user and group.
USER 65532:65532
ENTRYPOINT ["/retention"]
CMD ["run"]
