"""Distribute the artifacts: push them to a bucket with a SHA256 manifest, pull them back.

``manifest`` (format and key safety; cheap local hashes are ``extract.cache.hashindex``),
``remote`` (the bucket and the readers of manifest URLs), ``push``, ``pull``,
``compare`` (status), ``audit`` (verify, usage) and ``logs`` (per-file spans). Design notes
are in ``docs/sync.md``.
"""
