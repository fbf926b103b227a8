"""``rnnkit <task> <verb>``: a thin layer over the Python API."""
