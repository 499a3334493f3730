"""The extract stage: the query matrix (pipeline.yaml) run by an engine into the cache."""
