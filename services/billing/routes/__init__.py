"""Billing's HTTP routes, one module per resource: parse, authorize, call the service, shape."""
