"""One module per application: data + model + Trainer + decoding, as a Python API the CLI wraps."""
