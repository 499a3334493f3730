"""The versioned Parquet cache: layout, atomic locked writes, and entry state."""
