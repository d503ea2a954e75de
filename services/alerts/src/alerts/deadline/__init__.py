"""Deadlines: the working calendar (工作日, 调休) and the verification deadline of an alert."""
