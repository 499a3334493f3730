"""A synthetic raw-measurement sample calibrated to real M-Lab data (``iqb sample``)."""
