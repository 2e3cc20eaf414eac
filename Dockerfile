# ferrostream: the wheel built from this repository, in a slim Python image. Used by
# docker-compose.yml for the producer and the engine.
FROM rust:1-bookworm AS build
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        cmake libcurl4-openssl-dev zlib1g-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/build && /opt/build/bin/pip install -q "maturin>=1.7,<2"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY src ./src
COPY python ./python
COPY benches ./benches
RUN /opt/build/bin/maturin build --release --out /dist

FROM python:3.11-slim-bookworm
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-cache-dir /dist/ferrostream-*.whl
WORKDIR /data
ENTRYPOINT ["ferrostream"]
CMD ["--help"]
