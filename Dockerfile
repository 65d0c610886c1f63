# syntax=docker/dockerfile:1
#
# Video-OpusClip image: the API by default (`python -m app.server`), the worker and the
# migration Job with other commands (see k8s/). Build:
#
#   docker build -t video-opusclip:dev .                      # CPU torch (default)
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#                -t video-opusclip:cuda .                     # CUDA torch; run with MODEL_DEVICE=cuda
#
# The UID/GID 10001 below is the runAsUser/runAsGroup/fsGroup of every pod in k8s/
# (tests/test_k8s.py checks that they agree, and that CMD is the API container's command).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- builder: a venv with the project
FROM ${PYTHON_IMAGE} AS builder

# Where torch comes from: the CPU-only index keeps CUDA wheels (several GB) out of the image.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Compilers only here, for any dependency without a wheel for this platform.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, alone: the largest layer, and it changes only with TORCH_VERSION/TORCH_INDEX_URL.
RUN pip install --upgrade pip \
    && pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

# The project itself (not editable: code, migrations and shipped model weights go into
# site-packages). torch==2.13.0 is already satisfied by the wheel above (2.13.0+cpu).
WORKDIR /src
COPY pyproject.toml ./
COPY app ./app
COPY domain ./domain
COPY infra ./infra
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" . \
    && cd / && python -c "import torch, app.factory, infra.db.migrations; print('torch', torch.__version__)"

# ---------------------------------------------------------------- runtime: python + the venv
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# The root filesystem is read-only in Kubernetes: nothing may be written but /tmp (an emptyDir)
# and MEDIA_DIR (the job files: a ReadWriteMany volume there; DATA_DIR/media when unset).
# Bytecode was compiled by pip at build time; caches of torch and friends go under /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    LITESTAR_APP=app.asgi:app \
    TMPDIR=/tmp \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    TORCH_HOME=/tmp/.cache/torch \
    DATA_DIR=/tmp/video-opusclip

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# No HEALTHCHECK: Kubernetes probes /health/startup, /health/live and /health/ready.
CMD ["python", "-m", "app.server", "--host", "0.0.0.0", "--port", "8000"]
