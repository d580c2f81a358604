"""Training and deployment of the smile models: architectures and their cost, training,
full-int8 quantization into a model bundle, and LiteRT inference for predict/evaluate.

Import-light: TensorFlow is loaded only inside the functions that train or convert;
`tinysmile.train.infer`, `metrics` and `dataset` never load it.
"""
