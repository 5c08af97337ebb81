# syntax=docker/dockerfile:1
#
# sixsense-udf: the HTTP service Snowflake calls (external function behind API Gateway, or an SPCS
# service function). Build it for linux/amd64, the only platform Fargate (X86_64 in our task
# definition) and Snowpark Container Services run:
#
#   docker buildx build --platform linux/amd64 -t sixsense-udf:0.1.0 .
#   docker run --rm -p 8080:8080 -v sixsense-udf-state:/var/lib/udf -e SIXSENSE_SIMULATE=1 sixsense-udf:0.1.0
#     (simulator, no token; the named volume keeps the cache of paid answers across containers)
#   docker inspect -f '{{ index .Config.Labels "org.opencontainers.image.version" }}' sixsense-udf:0.1.0
#
# The image runs the wheel, the same artefact `pip install sixsense-udf` gets: the SQL templates
# and the benchmark suite are inside it (`udf-service sql render` and `udf-service bench` work
# as they do anywhere else), so nothing is copied beside it.
#
# No secret is baked in. SIXSENSE_API_TOKEN arrives at run time: from Secrets Manager on ECS, from a
# Snowflake SECRET on SPCS, from `-e` or `--env-file` locally. Workers, threads and port come from
# UDF_WORKERS, UDF_THREADS and UDF_PORT (defaults below), read by `udf-service serve`.

# Pin by digest in your own builds for byte-for-byte reproducibility (python:3.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The release, for the image's version label. A LABEL cannot read the wheel, so this repeats
# pyproject.toml's version (tests/test_version.py fails when they differ) and the build stage
# refuses to finish when the wheel it built says otherwise (e.g. a wrong --build-arg VERSION=).
ARG VERSION=0.1.0

# ---------------------------------------------------------------------------------------------
# wheel: build the project's wheel from the sources (hatchling, pinned in pyproject.toml)
# ---------------------------------------------------------------------------------------------
# The platform is fixed on purpose: an arm64 laptop must still produce the amd64 image the
# runtimes accept (Docker emulates while building); every stage says so.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS wheel

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY udf_service ./udf_service
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---------------------------------------------------------------------------------------------
# build: install the pinned closure (requirements.lock), then the wheel without resolving again
# ---------------------------------------------------------------------------------------------
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-virtualenv -r requirements.lock

ARG VERSION
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir --require-virtualenv --no-deps /dist/*.whl \
    && pip check \
    && test "$(udf-service --version)" = "udf-service, version ${VERSION}"

# ---------------------------------------------------------------------------------------------
# runtime: the venv, a non-root user and a writable state directory
# ---------------------------------------------------------------------------------------------
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS runtime

ARG VERSION
LABEL org.opencontainers.image.title="sixsense-udf" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="6sense firmographics, lead scores and segments as a Snowflake external/service function" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001: numeric, so Kubernetes-style runtimes (SPCS) can verify runAsNonRoot.
RUN groupadd --system --gid 10001 udf \
    && useradd --system --uid 10001 --gid udf --home-dir /var/lib/udf --no-create-home \
       --shell /usr/sbin/nologin udf \
    && mkdir -p /var/lib/udf \
    && chown udf:udf /var/lib/udf \
    && chmod 0750 /var/lib/udf

COPY --from=build /opt/venv /opt/venv

# UDF_HOST=0.0.0.0: listen on the container interface (the CLI default is 127.0.0.1).
# UDF_SYNC_BUDGET_S stays under API Gateway's 29 s integration timeout; longer batches go async.
# UDF_STATE_URL: embedded SQLite for one container. Several tasks must share Redis instead
# (redis://host:port/db); the Terraform module sets that when more than one task can run.
# MALLOC_ARENA_MAX=2: glibc gives threads up to 8 malloc arenas per CPU, and a worker runs up to
# 256 fetch threads; with 2 the soak's 4 workers ended at 343-348 MiB private instead of 385-430,
# with no more CPU per call (docs/performance.md, "Goals not met").
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    UDF_HOST=0.0.0.0 \
    UDF_PORT=8080 \
    UDF_WORKERS=2 \
    UDF_THREADS=8 \
    UDF_SYNC_BUDGET_S=20 \
    UDF_STATE_URL=sqlite:////var/lib/udf/state.db

# Writable even with a read-only root filesystem (ECS copies these paths' contents and
# permissions into the task's volumes when the task definition mounts them).
VOLUME ["/var/lib/udf", "/tmp"]

USER 10001:10001
WORKDIR /var/lib/udf
EXPOSE 8080

# Liveness only: /healthz touches nothing upstream. Readiness (/readyz) is for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('UDF_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["udf-service", "serve"]
