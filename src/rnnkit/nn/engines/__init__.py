"""How a layer runs over time: torch's fused kernel (native) or rnnkit's scan engine.

* :mod:`rnnkit.nn.engines.native`: a whole stack in one call of ``torch._VF`` (oneDNN / cuDNN).
* :mod:`rnnkit.nn.engines.scan`: one layer and direction at a time, for any cell.
"""
