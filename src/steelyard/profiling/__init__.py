"""Cost counters, measurements and the ``profile`` verb."""
