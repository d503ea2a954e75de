"""Matches of needs to offers, and their delivery (线上匹配, 线下帮扶落地)."""
