"""The hardware-aware architecture search (`tinysmile search`): a layer above training. It
reduces a baseline best-first, training and quantizing each trial through `tinysmile.train`
and measuring it with the compiler and the board's budget; training never imports it."""
