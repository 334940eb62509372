"""The camera registry: the source of truth for cameras, published to Redis for the workers."""
