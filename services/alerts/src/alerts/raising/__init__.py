"""Raising alerts (预警触发) from scoring's assessment.updated, by the configured rules."""
