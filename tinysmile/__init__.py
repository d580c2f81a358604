"""tinysmile: smile detection on microcontrollers, proven bit-exact against the host."""

__version__ = "0.1.0"
