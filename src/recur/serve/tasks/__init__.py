"""Server handlers, one module per task; each registers a ``TaskHandler`` on import."""
