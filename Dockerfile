# syntax=docker/dockerfile:1
# fletch with its embedded Python and bundled pyarrow. Build: docker build -t fletch .
# Run:   docker run -p 8815:8815 -v "$PWD/my_udfs:/udfs:ro" fletch

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# make build fetches the pinned pyarrow wheel for the target platform from PyPI.
RUN make build

# The embedded CPython and pyarrow's manylinux wheel need glibc and libstdc++.
FROM debian:bookworm-slim
RUN useradd --create-home --uid 10001 fletch
COPY --from=build /src/bin/fletch /usr/local/bin/fletch
COPY examples/udfs /udfs
USER fletch
ENV FLETCH_LISTEN=0.0.0.0:8815 \
    FLETCH_STATE_DIR=/home/fletch/.cache/fletch
EXPOSE 8815
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s CMD ["fletch", "health"]
ENTRYPOINT ["fletch", "serve"]
CMD ["--udf-dir", "/udfs"]
