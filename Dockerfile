# The manager image: static binaries on distroless, running as the nonroot user. It
# also holds /redis-gateway, the Redis-protocol gateway for unmodified Atlantis
# (cmd/redis-gateway), which the Atlantis pod runs as a sidecar from this image.
#   docker build -t ghcr.io/runatlantis/atlantis-lock-operator:dev .
# (The development machines have no Docker; `make build` builds the same binary.)

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace

# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
# The gateway is a nested module (it imports Atlantis through pkg/atlantis).
COPY cmd/redis-gateway/go.mod cmd/redis-gateway/go.sum cmd/redis-gateway/
COPY pkg/atlantis/go.mod pkg/atlantis/go.sum pkg/atlantis/
RUN cd cmd/redis-gateway && go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY pkg/ pkg/

# Static (no cgo) so that it runs on distroless/static; -trimpath and no debug symbols
# for a small, reproducible binary.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o manager ./cmd
RUN cd cmd/redis-gateway && CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /workspace/redis-gateway .

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
COPY --from=builder /workspace/redis-gateway /redis-gateway
# 65532 is distroless's nonroot user; the chart's pod security context runs it too.
USER 65532:65532
ENTRYPOINT ["/manager"]
