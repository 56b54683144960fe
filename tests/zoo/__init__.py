"""A zoo of published architectures: their config.json values and reference numbers written by hand."""
