"""The built-in model sources, one module per kind; each exposes ``LOADER`` for the registry."""
