# syntax=docker/dockerfile:1
# One image per service and one for the operator, all from this file; SERVICE names the Python
# module the image runs (python -m $SERVICE):
#   order inventory payment user catalog order_view notification gateway polysaga_operator
#   docker build --build-arg SERVICE=order_view -t polysaga-order-view .
# skaffold.yaml builds each of them. Images run as a numeric non-root user on a read-only root
# filesystem: the only writable path is /tmp (an emptyDir in the charts).

# Python 3.11, as the tests run it (pyproject: requires-python >=3.11,<3.14).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# uv, pinned with its hashes, only to turn uv.lock into a hashed requirements list.
COPY scripts/bootstrap.d/uv-requirements.txt /tmp/uv-requirements.txt
RUN python -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-deps --require-hashes -r /tmp/uv-requirements.txt
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
# The tooling's pyproject only: uv reads every workspace member; no tooling code enters an image.
COPY tools/pyproject.toml tools/
COPY services/ services/
COPY operator/ operator/
# A service image gets the runtime set (the project's own dependencies, `--no-dev`), the operator
# image the operator's (`--only-group operator`): exactly as locked, every wheel hash-checked, then
# the one distribution itself without dependencies. Bytecode is compiled here, since the runtime
# cannot write it.
RUN case "$SERVICE" in \
      polysaga_operator) selection="--only-group operator" distribution=/src/operator ;; \
      *) selection="--no-dev" distribution=/src ;; \
    esac \
    && /opt/uv/bin/uv export --quiet --frozen --no-emit-workspace $selection -o /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-deps "$distribution" \
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
