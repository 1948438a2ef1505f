"""ragline_stack: renders the gateway config and runs the local stack (stores, services,
Envoy) for `make run` and for the test suite."""
