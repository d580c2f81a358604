"""The int8 model compiler: .tflite -> graph IR -> portable C, bit-exact with TFLite."""
