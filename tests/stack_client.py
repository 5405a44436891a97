"""A small client of a running stack, used by the end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


class StackClient:
    def __init__(self, http: httpx.AsyncClient, services: dict[str, str]) -> None:
        self.http = http
        self.order_url = services["order"]
        self.inventory_url = services["inventory"]
        self.payment_url = services["payment"]

    async def seed(
        self, *, prices: dict[str, str], stock: dict[str, int], balances: dict[str, str]
    ) -> None:
        for sku, price in prices.items():
            (
                await self.http.put(f"{self.order_url}/prices/{sku}", json={"price": price})
            ).raise_for_status()
        for sku, available in stock.items():
            (
                await self.http.put(
                    f"{self.inventory_url}/stock/{sku}", json={"available": available}
                )
            ).raise_for_status()
        for user, balance in balances.items():
            (
                await self.http.put(
                    f"{self.payment_url}/accounts/{user}", json={"balance": balance}
                )
            ).raise_for_status()

    async def place(
        self, user: str, items: dict[str, int], key: str | None = None, saga: str | None = None
    ) -> str:
        headers = {"Idempotency-Key": key} if key else {}
        body: dict[str, Any] = {
            "user_id": user,
            "items": [{"sku": s, "quantity": q} for s, q in items.items()],
        }
        if saga is not None:
            body["saga"] = saga
        response = await self.http.post(f"{self.order_url}/orders", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["order_id"])

    async def order(self, order_id: str) -> dict[str, Any]:
        return (
            (await self.http.get(f"{self.order_url}/orders/{order_id}")).raise_for_status().json()
        )  # type: ignore[no-any-return]

    async def wait_ended(self, order_id: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                order = await self.order(order_id)
                if order["status"] != "PENDING":
                    return order
            except httpx.TransportError:
                pass  # a service restarting
            assert time.monotonic() < deadline, f"order {order_id} still pending"
            await asyncio.sleep(0.1)

    async def stock(self, sku: str) -> dict[str, Any]:
        return (await self.http.get(f"{self.inventory_url}/stock/{sku}")).raise_for_status().json()  # type: ignore[no-any-return]

    async def balance(self, user: str) -> str:
        return str(
            (await self.http.get(f"{self.payment_url}/accounts/{user}"))
            .raise_for_status()
            .json()["balance"]
        )

    async def payments(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.payment_url}/payments", params={"order_id": order_id}
        )
        return response.raise_for_status().json()  # type: ignore[no-any-return]

    async def reservation(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(f"{self.inventory_url}/reservations/{order_id}")
        return None if response.status_code == 404 else response.raise_for_status().json()
