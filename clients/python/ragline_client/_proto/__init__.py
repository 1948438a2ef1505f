"""Generated gRPC stubs of the ragline v1 API (clients/python/scripts/gen_stubs.sh)."""
