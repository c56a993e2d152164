"""A local stand-in for a Nomad 1.6 agent on the allocation endpoints (see README.md)."""
