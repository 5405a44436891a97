"""Who a request speaks for, once the edge has verified its token: a value the application
layers may take without depending on the web framework or the token library."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: str
    roles: frozenset[str]
    operator: bool

    def may_act_for(self, user_id: str | None) -> bool:
        return self.operator or (user_id is not None and user_id == self.user_id)
