"""The payment service: account balances; charges for reserved orders, refunds cancelled ones."""
