"""The ``steelyard`` command line: thin commands that build a config and call the library."""
