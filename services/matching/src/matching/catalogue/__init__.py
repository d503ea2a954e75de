"""The catalogue of 31 services in 9 categories (9大类31项帮扶服务), read-only."""
