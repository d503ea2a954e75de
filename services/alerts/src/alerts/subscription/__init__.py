"""Webhook subscriptions of townships and districts, and the delivery of their notifications."""
