"""The notification service: one e-mail per order outcome, sent exactly once in effect, from a
local replica of users' e-mail addresses."""
