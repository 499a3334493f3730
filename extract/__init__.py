"""IQB data workspace: the query matrix, its engines, the Parquet cache and its sync."""

__version__ = "0.1.0"
