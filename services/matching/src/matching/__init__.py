"""Sites, catalogue, organisations, offers, needs, matches, deliveries, points."""
