"""The results stage: what readers get from the published database (api, report, html)."""
