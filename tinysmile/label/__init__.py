"""Raters and label quality: the rating page and server, vote resolution, the audit of
the dataset's label-error rate, and the suspects queue (labels the model doubts)."""
