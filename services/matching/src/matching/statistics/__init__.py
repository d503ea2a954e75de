"""Statistics: needs by status, service and area, matching rate, partners, points."""
