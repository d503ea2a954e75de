"""The points programme (春风点数) of the charity supermarkets (幸福超市)."""
