"""CLI command modules; each exposes ``register(cli)`` and is added by ``api.cli``."""
