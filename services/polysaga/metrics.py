"""Every Prometheus metric polysaga exports, defined once. Names follow Prometheus
conventions (base units in names, ``_total`` for counters); label sets are bounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "polysaga_events_published_total", "Events the outbox relay published.", ["event_type"]
)
EVENTS_CONSUMED = Counter(
    "polysaga_events_consumed_total",
    "Event deliveries a consumer finished, by outcome.",
    ["event_type", "outcome"],  # handled | duplicate | retried | dead_lettered
)
DEAD_LETTERED = Counter(
    "polysaga_dead_lettered_total",
    "Messages moved to the dead-letter subject.",
    ["reason"],  # malformed | unsupported_version | exhausted
)
OUTBOX_RELAY_COMMITS = Counter(
    "polysaga_outbox_relay_commits_total",
    "Transactions the outbox relay committed to mark published rows (one per round).",
)
EVENT_HOP = Histogram(
    "polysaga_event_hop_seconds",
    "Where an event's time goes on its way into a consumer: created in the writer's"
    " transaction (ce-time) -> stored by JetStream (published), -> fetched by the consumer"
    " (delivered), -> the consumer's transaction committed (committed).",
    ["hop"],  # created_to_published | published_to_delivered | delivered_to_committed
    buckets=(
        0.0005,
        0.001,
        0.002,
        0.003,
        0.005,
        0.0075,
        0.01,
        0.015,
        0.02,
        0.03,
        0.05,
        0.075,
        0.1,
        0.15,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
    ),
)
VIEW_WRITES = Counter(
    "polysaga_view_writes_total",
    "Write commands a read model sent to its MongoDB store (what the store's write limit"
    " is spent on).",
    ["read_model"],
)
OUTBOX_BACKLOG = Gauge("polysaga_outbox_backlog", "Outbox rows not yet published.")
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "polysaga_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row."
)
SAGAS = Counter(
    "polysaga_sagas_total",
    "Sagas that ended, by outcome.",
    ["outcome"],  # confirmed | cancelled
)
SAGAS_STARTED = Counter("polysaga_sagas_started_total", "Orders placed (sagas started).")
SAGA_DURATION = Histogram(
    "polysaga_saga_duration_seconds",
    "Time from order placed to confirmed or cancelled.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSISTENCY_LAG = Histogram(
    "polysaga_consistency_lag_seconds",
    "Time from an event's occurrence (ce-time) to its application in a read model or replica.",
    ["read_model"],  # order-view | order-prices | notification-users
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
COMPENSATIONS = Counter(
    "polysaga_compensations_total",
    "Compensating actions taken.",
    ["action"],  # release | refund | refund_rejected (a charge the order service refused)
)
EVENTS_REJECTED = Counter(
    "polysaga_events_rejected_total",
    "Events a service refused to act on because they contradict what it knows (a charge for"
    " an order it never heard of, a total or user other than the order's): forged or buggy.",
    ["event_type", "reason"],
)
SAGA_STEPS_REFUSED = Counter(
    "polysaga_saga_steps_refused_total",
    "Saga steps a read model does not show because the saga does not allow them beside the"
    " steps it holds (a reservation failing after the order was confirmed, a second"
    " payment): forged or buggy events.",
    ["read_model", "step"],
)
SAGAS_IN_FLIGHT = Gauge(
    "polysaga_sagas_in_flight", "Sagas started and not yet ended (orders still PENDING)."
)
SAGAS_STUCK = Gauge(
    "polysaga_sagas_stuck", "Sagas still PENDING past their deadline (the sweeper is behind)."
)
CONSUMER_PENDING = Gauge(
    "polysaga_consumer_pending_messages",
    "Messages in the stream this service's durable consumer has not yet been delivered.",
    ["stream"],  # one per JetStream stream (a fixed set)
)
CONSUMER_ACK_PENDING = Gauge(
    "polysaga_consumer_ack_pending_messages",
    "Messages delivered to this service's consumer and not yet acknowledged.",
    ["stream"],
)
CONSUMER_REDELIVERED = Gauge(
    "polysaga_consumer_redelivered_messages",
    "Messages currently being redelivered to this service's consumer.",
    ["stream"],
)
HTTP_REQUESTS = Counter(
    "polysaga_http_requests_total",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status_code"],
)
HTTP_REQUEST_DURATION = Histogram(
    "polysaga_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CIRCUIT_BREAKER_STATE = Gauge(
    "polysaga_circuit_breaker_state",
    "1 for the state each upstream's circuit breaker is in, 0 for the others.",
    ["upstream", "state"],  # state: closed | open | half_open
)
CIRCUIT_BREAKER_REJECTED = Counter(
    "polysaga_circuit_breaker_rejected_total",
    "Calls answered at once because the upstream's circuit was open.",
    ["upstream"],
)
