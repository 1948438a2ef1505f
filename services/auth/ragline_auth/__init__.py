"""ragline's auth service: API keys, scopes and tenants for the gateway (Envoy ext_authz),
JWTs and their JWKS, usage analytics from Envoy's access logs, and the OpenAPI document."""
