"""The catalog service: products and their prices, kept in MongoDB; every change is
published so the order service can price orders from its own replica."""
