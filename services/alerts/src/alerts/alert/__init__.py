"""Alerts (预警): the case of one household, from raising to disposition."""
