"""Needs from alerts' service referrals: the consumer of the alerts feed (alert.disposed)."""
