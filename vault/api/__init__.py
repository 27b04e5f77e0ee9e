"""HTTP: thin routes, their dependencies, and the one error-to-HTTP mapping."""
