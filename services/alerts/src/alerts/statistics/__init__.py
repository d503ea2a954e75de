"""Statistics (统计) per township and district: workload, timeliness, outcomes, rule precision."""
