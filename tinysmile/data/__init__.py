"""Datasets: the SQLite + image-file store, importers, rater votes, preprocessing shared
by training and serving, augmentation and contact-sheet previews.

Kept import-light: OpenCV is loaded by the functions that need it, TensorFlow never.
"""
