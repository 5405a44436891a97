# syntax=docker/dockerfile:1
# One image per service and one for the operator, all from this file; SERVICE names the Python
# module the image runs (python -m $SERVICE):
#   order inventory payment orchestrator user catalog order_view notification gateway polysaga_operator
#   docker build --build-arg SERVICE=order_view -t polysaga-order-view .
# skaffold.yaml builds each of them. Images run as a numeric non-root user on a read-only root
# filesystem: the only writable path is /tmp (an emptyDir in the charts).

# Python 3.11, as the tests run it (pyproject: requires-python >=3.11,<3.14).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# The project with its exactly pinned dependencies, installed as wheels into the venv (bytecode
# compiled here, since the runtime cannot write it).
COPY pyproject.toml README.md ./
COPY services/ services/
COPY tools/ tools/
COPY operator/ operator/
# (pyproject's packages come from services/, tools/ and operator/, so every image holds every module.)
RUN /opt/venv/bin/pip install --prefer-binary /src \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
# Fail the build early rather than ship an image that starts nothing.
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<module>" >&2; exit 1; } \
    && groupadd --gid 10001 polysaga \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin polysaga
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    POLYSAGA_HTTP_HOST=0.0.0.0 \
    POLYSAGA_HTTP_PORT=8000 \
    POLYSAGA_MODULE=${SERVICE}
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# Kubernetes probes /healthz and /readyz; no HEALTHCHECK here.
# exec: the module is PID 1 and receives SIGTERM for a graceful drain.
CMD ["/bin/sh", "-c", "exec python -m \"$POLYSAGA_MODULE\""]
