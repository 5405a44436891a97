# One image per service and one for the operator, all from this file. SERVICE names the module a
# service image runs (python -m $SERVICE):
#   order inventory payment orchestrator sales user catalog order_view notification gateway
#   docker build --build-arg SERVICE=order_view -t polysaga-order-view .
#   docker build --target operator -t polysaga-operator .
# skaffold.yaml builds each of them.
#
# A build needs no network and no remote frontend (no `# syntax=` line; Docker's classic builder
# and BuildKit both read it). BASE_IMAGE is a Debian bookworm with Python 3.11: python:3.11 slim
# where a registry is reachable (kind, minikube), and on this machine the root filesystem that the
# bootstrap made with debootstrap (`polysaga cluster up` imports it as polysaga-base:bookworm;
# skaffold's local profile passes it). Every wheel comes from the wheelhouse the bootstrap
# downloaded on the host from uv.lock (.polysaga/wheelhouse: the wheels, pip's own wheel,
# runtime.txt and operator.txt with their hashes), installed with --no-index --require-hashes.
#
# Images run as a numeric non-root user on a read-only root filesystem: the only writable path is
# /tmp (an emptyDir in the charts). Every service image shares the layers up to its own code:
# the user, the runtime venv and the runtime library.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS wheels
COPY .polysaga/wheelhouse/ /wheels/

# The runtime dependency group only (no tooling, no operator, no test tools): what the services
# import. pip runs from its own wheel, so the venv holds no pip. Bytecode is compiled here (the
# root filesystem is read-only at run time), except for faker and pygments: litestar requires
# them (through polyfactory and rich) but a service never imports them, and their bytecode
# would be 17 MB of every image.
FROM ${BASE_IMAGE} AS runtime-deps
COPY --from=wheels /wheels/ /wheels/
RUN python3 -m venv --without-pip /opt/venv \
    && /opt/venv/bin/python /wheels/pip.whl/pip install --quiet --no-index --no-deps \
       --require-hashes --no-compile --find-links /wheels --requirement /wheels/runtime.txt \
    && /opt/venv/bin/python -m compileall -q -j 0 -x '/site-packages/(faker|pygments)/' /opt/venv/lib

FROM ${BASE_IMAGE} AS operator-deps
COPY --from=wheels /wheels/ /wheels/
RUN python3 -m venv --without-pip /opt/venv \
    && /opt/venv/bin/python /wheels/pip.whl/pip install --quiet --no-index --no-deps \
       --require-hashes --no-compile --find-links /wheels --requirement /wheels/operator.txt \
    && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib

FROM ${BASE_IMAGE} AS nonroot
RUN groupadd --gid 10001 polysaga \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin polysaga
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp

FROM nonroot AS operator
COPY --from=operator-deps /opt/venv /opt/venv
COPY operator/polysaga_operator/ /app/polysaga_operator/
RUN python3 -m compileall -q /app
USER 10001:10001
EXPOSE 8080 9090
CMD ["python", "-m", "polysaga_operator"]

FROM nonroot AS service
COPY --from=runtime-deps /opt/venv /opt/venv
COPY services/polysaga/ /app/polysaga/
RUN python3 -m compileall -q /app/polysaga
ENV POLYSAGA_HTTP_HOST=0.0.0.0 \
    POLYSAGA_HTTP_PORT=8000
# Everything above is the same for every service; from here on, one service's own code.
ARG SERVICE
# Fail the build early rather than ship an image that starts nothing.
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<module>" >&2; exit 1; }
COPY services/${SERVICE}/ /app/${SERVICE}/
RUN python3 -m compileall -q /app/${SERVICE}
ENV POLYSAGA_MODULE=${SERVICE}
USER 10001:10001
EXPOSE 8000
# Kubernetes probes /healthz and /readyz; no HEALTHCHECK here.
# exec: the module is PID 1 and receives SIGTERM for a graceful drain.
CMD ["/bin/sh", "-c", "exec python -m \"$POLYSAGA_MODULE\""]
