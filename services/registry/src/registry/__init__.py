"""Households, members, areas, department feeds, declarations, PII vault."""
