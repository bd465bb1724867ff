# syntax=docker/dockerfile:1

# Build a static binary on the build machine's platform, for the target's.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/retention ./cmd/retention

# No shell, no package manager: the binary, CA certificates and tzdata.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/retention /retention
# Numeric, so that runAsNonRoot can verify it; the manifests run as the same user.
USER 65532:65532
ENTRYPOINT ["/retention"]
CMD ["run"]
