"""Alerts, deadlines, verification, disposition, notifications."""
