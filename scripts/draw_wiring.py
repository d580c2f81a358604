"""Draw the smiling bot's wiring (docs/wiring.svg) from the pins `tinysmile pi run` uses.

    .venv/bin/python scripts/draw_wiring.py [OUT.svg]

The button and LED pins are read from `pi run`'s own option defaults, and their header
positions from the Raspberry Pi's 40-pin header table below, so the picture changes with the
code (tests/test_pi.py checks the committed picture against a fresh drawing).
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "wiring.svg"

# The 40-pin header (Raspberry Pi 2 and later): physical pin -> what it carries.
HEADER = {
    1: "3V3", 2: "5V", 3: "GPIO2", 4: "5V", 5: "GPIO3", 6: "GND", 7: "GPIO4", 8: "GPIO14",
    9: "GND", 10: "GPIO15", 11: "GPIO17", 12: "GPIO18", 13: "GPIO27", 14: "GND",
    15: "GPIO22", 16: "GPIO23", 17: "3V3", 18: "GPIO24", 19: "GPIO10", 20: "GND",
    21: "GPIO9", 22: "GPIO25", 23: "GPIO11", 24: "GPIO8", 25: "GND", 26: "GPIO7",
    27: "GPIO0", 28: "GPIO1", 29: "GPIO5", 30: "GND", 31: "GPIO6", 32: "GPIO12",
    33: "GPIO13", 34: "GND", 35: "GPIO19", 36: "GPIO16", 37: "GPIO26", 38: "GPIO20",
    39: "GND", 40: "GPIO21",
}  # fmt: skip
LED_RESISTOR = "330 Ω"  # about 4 mA from 3.3 V through a red LED (Vf ~2 V)


def pins() -> tuple[int, int]:
    """(button, led) GPIO numbers: `tinysmile pi run`'s defaults."""
    from tinysmile.pi.commands import run_cmd

    d = {p.name: p.default for p in run_cmd.params}
    return int(d["button_pin"]), int(d["led_pin"])


def physical(gpio: int) -> int:
    return next(n for n, name in HEADER.items() if name == f"GPIO{gpio}")


def nearest_ground(pin: int) -> int:
    return min((n for n, name in HEADER.items() if name == "GND"), key=lambda n: abs(n - pin))


def line(x1: int, y1: int, x2: int, y2: int, colour: str = "#222") -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="3"/>'


def text(x: int, y: int, s: str, size: int = 13, anchor: str = "start", **attrs: str) -> str:
    more = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"{more}>{s}</text>'


def box(x: int, y: int, w: int, h: int, fill: str = "#eee") -> str:
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{fill}" stroke="#333"/>'


def draw() -> str:
    button, led = pins()
    b_pin, l_pin = physical(button), physical(led)
    b_gnd, l_gnd = nearest_ground(b_pin), nearest_ground(l_pin)
    if l_gnd == b_gnd:
        l_gnd = min(
            (n for n, name in HEADER.items() if name == "GND" and n != b_gnd),
            key=lambda n: abs(n - l_pin),
        )
    used = {b_pin: "#1f6fd1", l_pin: "#d12f1f", b_gnd: "#222", l_gnd: "#222"}
    title = "The smiling bot: wiring (Raspberry Pi 4 or 5, 40-pin header, pin 1 at the top left)"
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="470" '
        + 'font-family="DejaVu Sans, sans-serif" font-size="13">',
        '<rect width="900" height="470" fill="white"/>',
        text(20, 28, title, 17, font_weight="bold"),
        '<rect x="200" y="50" width="120" height="400" rx="8" fill="#2e7d32"/>',
        text(260, 70, "header", anchor="middle", fill="white"),
    ]

    def pin_xy(n: int) -> tuple[int, int]:
        row, col = (n - 1) // 2, (n - 1) % 2
        return 240 + 40 * col, 88 + 18 * row

    labels: dict[int, list[str]] = {}
    for n, name in HEADER.items():
        x, y = pin_xy(n)
        out.append(f'<circle cx="{x}" cy="{y}" r="6" fill="{used.get(n, "#c9b037")}"/>')
        if n in used:
            labels.setdefault(y, []).append(f"pin {n} {name}")
    for y, texts in labels.items():
        out.append(text(190, y + 4, " / ".join(texts), 12, anchor="end"))
    channel = iter((350, 370, 390, 410))

    def wire(n: int, to: tuple[int, int], colour: str) -> None:
        x, y = pin_xy(n)
        y += -4 if n % 2 else 4  # the two pins of a row: two lines apart
        c = next(channel)
        out.append(
            f'<polyline points="{x},{y} {c},{y} {c},{to[1]} {to[0]},{to[1]}" fill="none" '
            + f'stroke="{colour}" stroke-width="3"/>'
        )

    # The nose button: GPIO to one side, ground to the other (the input's pull-up holds it
    # high; a press pulls it low).
    bx, by = 470, 110
    wire(b_pin, (bx, by), "#1f6fd1")
    wire(b_gnd, (bx + 90, by + 40), "#222")
    out += [
        line(bx, by, bx + 25, by, "#1f6fd1"),
        line(bx + 25, by, bx + 65, by - 14, "#333"),
        line(bx + 65, by, bx + 90, by),
        line(bx + 90, by, bx + 90, by + 40),
        text(bx, by - 24, "nose button (push, normally open)"),
        text(bx, by + 62, f"GPIO{button} (pin {b_pin}) to GND (pin {b_gnd}), pull-up inside", 11),
    ]
    # The smile LED: GPIO -> resistor -> anode; cathode -> ground.
    lx, ly = 470, 250
    wire(l_pin, (lx, ly), "#d12f1f")
    wire(l_gnd, (lx + 170, ly + 40), "#222")
    diode = f"{lx + 120},{ly - 12} {lx + 120},{ly + 12} {lx + 145},{ly}"
    out += [
        box(lx, ly - 9, 60, 18, "#f4e4c1"),
        text(lx + 30, ly + 5, LED_RESISTOR, 11, anchor="middle"),
        line(lx + 60, ly, lx + 120, ly, "#d12f1f"),
        f'<polygon points="{diode}" fill="#ffd54f" stroke="#333"/>',
        line(lx + 145, ly - 12, lx + 145, ly + 12, "#333"),
        line(lx + 145, ly, lx + 170, ly),
        line(lx + 170, ly, lx + 170, ly + 40),
        text(lx, ly - 24, "smile LED (anode to the resistor)"),
        text(lx, ly + 62, f"GPIO{led} (pin {l_pin}), {LED_RESISTOR}, LED, GND (pin {l_gnd})", 11),
    ]
    # The camera and the optional microcontroller.
    out += [
        box(470, 350, 150, 40),
        text(545, 375, "camera module", anchor="middle"),
        text(470, 405, "ribbon to the CSI", 11),
        text(470, 420, "camera connector (picamera2)", 11),
        box(690, 350, 150, 40),
        text(765, 375, "microcontroller", anchor="middle"),
        text(690, 405, "optional: USB to any USB port", 11),
        text(690, 420, "(pi run --mcu auto)", 11),
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.write_text(draw(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
