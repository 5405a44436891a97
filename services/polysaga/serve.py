"""Run one service as a process: ``python -m order`` ends up here."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

from polysaga.app import create_app
from polysaga.http_framing import ProblemH11Protocol
from polysaga.logs import configure_logging
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

DefinitionBuilder = Callable[[ServiceSettings], ServiceDefinition]


def serve(name: str, build: DefinitionBuilder) -> None:
    settings = ServiceSettings(service_name=name)
    configure_logging(name, settings)
    uvicorn.run(
        create_app(build(settings), settings),
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http=ProblemH11Protocol,
        lifespan="on",
        access_log=False,  # the app's own, sampled (polysaga.logs.AccessLog)
        log_config=None,  # uvicorn's loggers go through the JSON handler too
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
