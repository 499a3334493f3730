"""The sections of ``make bench``, one module each, mixed into ``bench.run.Bench``."""
