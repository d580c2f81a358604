"""The Raspberry Pi fallback runtime: camera -> face detector -> crop framed like the
training data -> the bundle's preprocessing -> engine (LiteRT or the generated C) -> LED."""
