"""Runnable examples of services built on the service SDK (`clients.service`)."""
