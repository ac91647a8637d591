# syntax=docker/dockerfile:1
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rapport-api --bin rapport

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/rapport --create-home rapport
COPY --from=build /src/target/release/rapport /usr/local/bin/rapport
USER rapport
WORKDIR /var/lib/rapport
ENV RAPPORT_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["rapport"]
CMD ["serve"]
