"""The inventory service: stock per SKU; reserves for placed orders, releases for cancelled ones."""
