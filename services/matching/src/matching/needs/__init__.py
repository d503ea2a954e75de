"""Needs (帮扶需求): from alerts' service referrals, workers' visits and citizens' micro-wishes."""
