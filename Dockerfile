# syntax=docker/dockerfile:1
#
# tipreaper's container image: a static reaper binary on a distroless base, run as a non-root user.
#
#   docker build -t tipreaper:1.2.3 --build-arg VERSION=1.2.3 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The build stage's `go build` line is what deploy/dockerfile_test.go runs (same flags, same environment,
# read out of this file), so keep it one RUN instruction of the form `RUN [--mount=…] go build …`.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# VERSION and CREATED (the build time, RFC 3339) are what `reaper version` prints; REVISION only labels the
# image (the build context has no .git, so the binary carries no VCS stamp of its own).
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=
# A static binary: the SQLite driver is pure Go, nothing needs cgo.
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build go build -trimpath -buildvcs=false -ldflags="-s -w -X github.com/tipreaper/tipreaper/internal/cli.version=${VERSION} -X github.com/tipreaper/tipreaper/internal/cli.built=${CREATED}" -o /out/reaper ./cmd/reaper
# The state directory (SQLite file and its lock), owned by the runtime user.
RUN mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=
LABEL org.opencontainers.image.title="tipreaper" \
      org.opencontainers.image.description="Deletes expired customers of a Partner Center Tip sandbox" \
      org.opencontainers.image.source="https://github.com/tipreaper/tipreaper" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/reaper /usr/local/bin/reaper
COPY --from=build --chown=65532:65532 /out/state /var/lib/tipreaper
# nonroot of the distroless image; numeric so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
WORKDIR /var/lib/tipreaper
ENV REAPER_CONFIG=/etc/tipreaper/reaper.yaml
VOLUME ["/var/lib/tipreaper"]
ENTRYPOINT ["reaper"]
CMD ["run"]
