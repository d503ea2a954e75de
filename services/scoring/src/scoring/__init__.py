"""Scoring models, assessments, portraits, suggestions, what-if."""
