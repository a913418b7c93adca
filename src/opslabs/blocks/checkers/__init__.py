"""One small module per real tool; `registry.choose` picks the one for a block."""
