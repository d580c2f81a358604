"""Devices: boards, the serial link, the emulated board, flash / verify / profile."""
