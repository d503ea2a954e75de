"""Partner organisations (入驻助联体的社会组织): applications, approval, their identity."""
