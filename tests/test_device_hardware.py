"""Real boards: every board file with USB ids, when such a board is attached and already
flashed with a model, must answer the handshake and pass parity on that model. Skipped
when no board answers (CI has none)."""

from __future__ import annotations

import os

import pytest

from tinysmile.boards import list_boards, load_board

REAL = [b for b in list_boards() if load_board(b).serial.get("usb_ids")]


@pytest.mark.hardware
@pytest.mark.parametrize("board_id", REAL or ["none"])
def test_attached_board_parity(board_id):
    if board_id == "none":
        pytest.skip("no board file lists USB ids")
    from tinysmile.device.commands import run_verify
    from tinysmile.device.transport import find_ports

    board = load_board(board_id)
    ports = find_ports(list(board.serial["usb_ids"]))
    if not ports:
        pytest.skip(f"no {board_id} attached")
    model = os.environ.get("TINYSMILE_HW_MODEL")
    if not model:
        pytest.skip("set TINYSMILE_HW_MODEL to the model flashed on the board")
    res = run_verify(model, board_id, ports[0], 16, None)
    assert res["ok"], res["mismatches"][:1]
