"""The API's routes, one router per concern: probes and metadata, generation."""
