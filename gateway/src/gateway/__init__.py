"""The single entry: routing, token checks, rate limits, merged OpenAPI, development issuer."""
