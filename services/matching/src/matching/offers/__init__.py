"""Offers (帮扶项目) that partners post: services, areas, a site, capacity, eligibility."""
