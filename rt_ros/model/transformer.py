"""RT-1's decoder-only transformer: pre-LayerNorm layers with a head size independent of width.

Attention is written out (matmul + masked softmax) rather than using scaled_dot_product_attention
or nn.MultiheadAttention, so the graph exports to plain ONNX opset-18 ops.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The reference uses LayerNorm epsilon 1e-6 throughout.
LAYER_NORM_EPS = 1e-6
POSITION_EMBEDDING_INIT_STD = 0.02


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with `num_heads` heads of `head_dim` each, projected back to the width."""

    def __init__(self, model_dim: int, num_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.query = nn.Linear(model_dim, num_heads * head_dim)
        self.key = nn.Linear(model_dim, num_heads * head_dim)
        self.value = nn.Linear(model_dim, num_heads * head_dim)
        self.output = nn.Linear(num_heads * head_dim, model_dim)
        self.attention_dropout = nn.Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # [B, S, H*Dh] -> [B, H, S, Dh]
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, S, D], attention_mask bool [S, S] (True = may attend) -> [B, S, D].

        `rows` (int64 [R]): only those query positions are computed (keys and values still come
        from all S positions) -> [B, R, D], exactly those rows of the full result.
        """
        if rows is not None:
            queries, attention_mask = x.index_select(1, rows), attention_mask.index_select(0, rows)
        else:
            queries = x
        query = self._split_heads(self.query(queries)) / math.sqrt(self.head_dim)  # [B, H, R, Dh]
        key = self._split_heads(self.key(x))  # [B, H, S, Dh]
        value = self._split_heads(self.value(x))  # [B, H, S, Dh]
        scores = query @ key.transpose(-2, -1)  # [B, H, R, S]
        scores = torch.where(attention_mask, scores, torch.finfo(scores.dtype).min)
        weights = self.attention_dropout(scores.softmax(dim=-1))  # [B, H, R, S]
        context = (weights @ value).transpose(1, 2).flatten(2)  # [B, R, H*Dh]
        return self.output(context)  # [B, R, D]


class TransformerLayer(nn.Module):
    """Pre-LN block: x + attention(LN(x)); x + dropout(feed_forward(LN(x)))."""

    def __init__(self, model_dim: int, num_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(model_dim, eps=LAYER_NORM_EPS)
        self.attention = MultiHeadSelfAttention(model_dim, num_heads, head_dim, dropout)
        self.feed_forward_norm = nn.LayerNorm(model_dim, eps=LAYER_NORM_EPS)
        # As in the reference: the feed-forward is ONE Dense layer of the model width, with no
        # activation (not the usual two-layer MLP).
        self.feed_forward = nn.Linear(model_dim, model_dim)
        self.feed_forward_dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, S, D], attention_mask bool [S, S] -> [B, S, D]; with `rows` (int64 [R]) only
        those positions' outputs -> [B, R, D]."""
        residual = x if rows is None else x.index_select(1, rows)
        x = residual + self.attention(self.attention_norm(x), attention_mask, rows)
        return x + self.feed_forward_dropout(self.feed_forward(self.feed_forward_norm(x)))


class DecoderTransformer(nn.Module):
    """Token projection + learned positions, `num_layers` layers, Linear to `vocab_size` logits."""

    def __init__(
        self,
        input_dim: int,
        model_dim: int,
        sequence_length: int,
        num_layers: int,
        num_heads: int,
        head_dim: int,
        dropout: float,
        vocab_size: int,
    ) -> None:
        super().__init__()
        self.token_projection = nn.Linear(input_dim, model_dim)
        self.position_embedding = nn.Parameter(torch.empty(sequence_length, model_dim))
        nn.init.normal_(self.position_embedding, std=POSITION_EMBEDDING_INIT_STD)
        self.layers = nn.ModuleList(
            TransformerLayer(model_dim, num_heads, head_dim, dropout) for _ in range(num_layers)
        )
        # No final LayerNorm: the reference maps the last layer's output straight to logits.
        self.to_logits = nn.Linear(model_dim, vocab_size)

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens [B, S, input_dim], attention_mask bool [S, S] -> logits [B, S, vocab_size].

        `rows` (int64 [R]): the logits of those positions only -> [B, R, vocab_size]. Every
        earlier layer still needs all S positions (later rows attend to them), but the last
        layer computes queries, feed-forward and logits for the R rows alone.
        """
        x = self.token_projection(tokens) + self.position_embedding  # [B, S, D]
        *earlier, last = self.layers
        for layer in earlier:
            x = layer(x, attention_mask)
        return self.to_logits(last(x, attention_mask, rows))  # [B, S or R, V]
