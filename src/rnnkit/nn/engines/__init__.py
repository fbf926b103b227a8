"""How a layer runs over time: torch's fused kernel (native) or rnnkit's scan engine."""
