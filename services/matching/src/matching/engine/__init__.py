"""The matching engine: priority-weighted min-cost flow over needs and offers (OR-Tools)."""
