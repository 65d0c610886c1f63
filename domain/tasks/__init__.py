"""Tasks inside a project, with status, priority, due date and tags."""
