"""The bot's pins through gpiozero: the smile LED and the nose button.

gpiozero picks its pin factory itself (lgpio on a Pi, or `GPIOZERO_PIN_FACTORY=mock`);
tests pass its MockFactory. `--no-gpio` runs without any pin.
"""

from __future__ import annotations

import threading
from typing import Any

from tinysmile.errors import TinysmileError


class Pins:
    """LED (or none) and button (or none)."""

    def __init__(
        self,
        led_pin: int | None,
        button_pin: int | None,
        factory: Any = None,
    ) -> None:
        self.led: Any = None
        self.button: Any = None
        self.presses = threading.Semaphore(0)
        if led_pin is None and button_pin is None:
            return
        try:
            from gpiozero import LED, Button
            from gpiozero.exc import GPIOZeroError
        except ImportError:
            raise TinysmileError(
                "gpiozero is not installed: pip install 'tinysmile[pi]', or pass --no-gpio"
            ) from None
        import warnings

        try:
            with warnings.catch_warnings():
                # gpiozero warns about every pin library it tries; the error below says it all.
                warnings.simplefilter("ignore")
                self._open(LED, Button, led_pin, button_pin, factory)
        except GPIOZeroError as exc:
            self.close()
            if type(exc).__name__ == "BadPinFactory":
                raise TinysmileError(
                    "GPIO: no pin library works here (not a Raspberry Pi?); pass --no-gpio"
                ) from None
            raise TinysmileError(f"GPIO: {exc}") from None
        except (OSError, RuntimeError) as exc:
            self.close()
            raise TinysmileError(f"GPIO: pins not usable here ({exc}); pass --no-gpio") from None

    def _open(
        self,
        led_cls: Any,
        button_cls: Any,
        led_pin: int | None,
        button_pin: int | None,
        factory: Any,
    ) -> None:
        if led_pin is not None:
            self.led = led_cls(led_pin, pin_factory=factory)
        if button_pin is not None:
            self.button = button_cls(button_pin, pin_factory=factory)
            # Count presses as they happen, so one press is one frame even when it comes
            # while the previous frame is still being processed.
            self.button.when_pressed = lambda *_: self.presses.release()

    def show(self, smile: bool) -> None:
        if self.led is not None:
            if smile:
                self.led.on()
            else:
                self.led.off()

    def wait_press(self, timeout: float) -> bool:
        """True when a press arrived (each press is taken once)."""
        return self.presses.acquire(timeout=timeout)

    def close(self) -> None:
        for dev in (self.led, self.button):
            if dev is not None:
                dev.close()
        self.led = self.button = None
