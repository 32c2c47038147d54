# connectd: one static binary in a minimal image.
#   docker build -t connectd .
#   docker run -v $PWD/config.yaml:/etc/connectd/config.yaml -v connectd-offsets:/var/lib/connectd connectd
#
# connectd with the duckdb destination, which links DuckDB through cgo, on a glibc base
# (the default image stays static and leaves it out):
#   docker build --target duckdb -t connectd:duckdb .
#   docker run ... -v connectd-data:/var/lib/connectd connectd:duckdb   (path: /var/lib/connectd/replica.duckdb)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/connectd ./cmd/connectd

# The cgo build runs on the Debian release of the image it runs in (bookworm, Debian
# 12), so that the binary asks for no newer glibc or libstdc++ than that image has.
FROM golang:1.26-bookworm AS build-duckdb
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=1 go build -trimpath -tags duckdb,duckdb_arrow \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/connectd ./cmd/connectd

# distroless/cc: glibc, libgcc and libstdc++, which DuckDB's C++ needs; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot AS duckdb
COPY --from=build-duckdb /out/connectd /usr/local/bin/connectd
VOLUME ["/var/lib/connectd"]
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/connectd"]
CMD ["run", "-c", "/etc/connectd/config.yaml"]

# The default target, last: the static image.

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/connectd /usr/local/bin/connectd
VOLUME ["/var/lib/connectd"]
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/connectd"]
CMD ["run", "-c", "/etc/connectd/config.yaml"]
