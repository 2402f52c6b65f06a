"""PyTorch RT-1: FiLM-EfficientNet, TokenLearner, decoder-only transformer, presets, export."""
