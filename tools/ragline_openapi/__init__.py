"""The OpenAPI 3.1 document of the gateway, generated from the descriptor set.

Every transcoded operation, its parameters and schemas come from the protos (`google.api.http`,
`google.api.field_behavior`, comments); `gateway_routes` adds what the protos cannot say: the
plain-HTTP routes (OpenAI-compatible API, WebSocket, metrics), which operations are public,
the media types of raw bodies and the errors every operation can answer.
"""
