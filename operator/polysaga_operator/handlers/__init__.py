"""What the operator does on each event; main.py maps kopf's decorators onto these."""
