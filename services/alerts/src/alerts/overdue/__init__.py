"""Overdue alerts (逾期): warnings before the deadline, overdue marking, escalation to the district."""
