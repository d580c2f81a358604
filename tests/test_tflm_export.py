"""The TFLite Micro runtime's files: the model as a C array, the exact op resolver, and
an arena sized from TFLM's own report plus the stated margin."""

from __future__ import annotations

import re
import subprocess

import pytest
from models import build_mobilenet_block, build_smile_like

from tinysmile.compiler.reader import parse_model
from tinysmile.compiler.tflm import tflm_arena
from tinysmile.compiler.tflm_export import ALIGN, export_tflm

MODELS = {"smile_like": build_smile_like, "mobilenet_block": build_mobilenet_block}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_resolver_and_arena(name, tmp_path):
    model = MODELS[name]()
    result = export_tflm(model, tmp_path, name, margin=0.25)
    header = (tmp_path / "model_ops.h").read_text()
    methods = re.findall(r"resolver\.(Add\w+)\(\)", header)
    model_ops = {op.kind for op in parse_model(model).ops}
    assert len(methods) == len(set(methods)) == len(model_ops)
    assert f"kTsmOpCount = {len(model_ops)};" in header
    expected_methods = {
        "CONV_2D": "AddConv2D",
        "MAX_POOL_2D": "AddMaxPool2D",
        "MUL": "AddMul",
        "ADD": "AddAdd",
        "RESHAPE": "AddReshape",
        "FULLY_CONNECTED": "AddFullyConnected",
        "LOGISTIC": "AddLogistic",
        "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
        "MEAN": "AddMean",
        "SOFTMAX": "AddSoftmax",
    }
    assert set(methods) == {expected_methods[k] for k in model_ops}
    report = tflm_arena(model)
    total = report["head"] + report["tail"]
    assert result.report_bytes == total
    # total * 1.25 rounded up to a multiple of 16, computed here independently
    want = -(-(total * 5) // (4 * ALIGN)) * ALIGN
    assert result.arena_bytes == want
    assert f"kTsmArenaSize = {want};" in header


def test_model_array_round_trips(tmp_path):
    model = build_smile_like()
    export_tflm(model, tmp_path, "smile_like")
    main = tmp_path / "dump.cc"
    main.write_text(
        '#include <cstdio>\n#include "model_data.h"\n'
        "int main() { fwrite(smile_like_model_data, 1, smile_like_model_data_len, stdout);"
        " return 0; }\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{tmp_path}",
            str(main),
            str(tmp_path / "model_data.cc"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == model
