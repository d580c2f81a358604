"""The face finder: a tiny int8 centroid-grid detector that runs on the microcontroller."""
