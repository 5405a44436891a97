"""The sales projection: units and revenue per product, orders and spending per customer,
and sales per day, over every confirmed order; built from the ORDERS stream's history."""
