"""PyTorch RT-1: FiLM-EfficientNet frame encoder, TokenLearner, decoder-only transformer, export."""
