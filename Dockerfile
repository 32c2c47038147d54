# connectd: one static binary in a minimal image.
#   docker build -t connectd .
#   docker run -v $PWD/config.yaml:/etc/connectd/config.yaml -v connectd-offsets:/var/lib/connectd connectd
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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/connectd /usr/local/bin/connectd
VOLUME ["/var/lib/connectd"]
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/connectd"]
CMD ["run", "-c", "/etc/connectd/config.yaml"]
