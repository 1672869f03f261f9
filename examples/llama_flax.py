"""A hand-written Flax port of transformers' ``LlamaModel``, checked layer by layer.

``port(reference)`` is what ``tether compare`` calls for a ``module:function`` side: it
gets a copy of A's PyTorch ``LlamaModel``, copies its weights into Flax parameters and
returns a function ``inputs -> (outputs, intermediates)``. The intermediates are what
Flax's ``capture_intermediates=True`` records, named by module path (``layers_0/mlp``),
which tether pairs with PyTorch's module names (``layers.0.mlp``)::

    pip install 'tether[jax]'
    tether compare path/to/llama examples.llama_flax:port              # exact port
    tether compare path/to/llama examples.llama_flax:port_eps_outside  # one-op bug

Shapes: B batch, T tokens, D hidden, H query heads, K key/value heads, E head dim,
F MLP width, V vocabulary. Everything runs in float32 on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Config:
    vocab_size: int  # V
    hidden_size: int  # D
    intermediate_size: int  # F
    num_hidden_layers: int
    num_attention_heads: int  # H
    num_key_value_heads: int  # K (grouped-query attention: H is a multiple of K)
    rms_norm_eps: float
    rope_theta: float
    #: how RMSNorm divides by the root mean square:
    #: "rsqrt"       x * rsqrt(mean(x^2) + eps), as transformers does
    #: "div_sqrt"    x / sqrt(mean(x^2) + eps), the same maths, rounded differently
    #: "eps_outside" x / (sqrt(mean(x^2)) + eps), a real bug: eps outside the root
    rms_norm: str = "rsqrt"

    @property
    def head_dim(self) -> int:  # E
        return self.hidden_size // self.num_attention_heads


class RMSNorm(nn.Module):
    config: Config

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, D] -> [B, T, D]
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],))
        eps, how = self.config.rms_norm_eps, self.config.rms_norm
        mean_square = jnp.mean(x * x, axis=-1, keepdims=True)  # [B, T, 1]
        if how == "rsqrt":
            normed = x * jax.lax.rsqrt(mean_square + eps)
        elif how == "div_sqrt":
            normed = x / jnp.sqrt(mean_square + eps)
        else:
            normed = x / (jnp.sqrt(mean_square) + eps)
        return weight * normed


def rotary(positions: jax.Array, dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos, sin of rotary position embeddings: [T] -> [T, E] each."""
    inv_freq = 1.0 / theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)  # [E/2]
    freqs = positions[:, None].astype(jnp.float32) * inv_freq[None, :]  # [T, E/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)  # [T, E]
    return jnp.cos(angles), jnp.sin(angles)


def rotate_half(x: jax.Array) -> jax.Array:  # [..., E]: (x1, x2) -> (-x2, x1)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-x2, x1], axis=-1)


class Attention(nn.Module):
    config: Config

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        # x [B, T, D]; mask [B, 1, T, T] (True where a query may see a key)
        c = self.config
        b, t, _ = x.shape
        h, k, e = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        q = nn.Dense(h * e, use_bias=False, name="q_proj")(x).reshape(b, t, h, e)
        key = nn.Dense(k * e, use_bias=False, name="k_proj")(x).reshape(b, t, k, e)
        value = nn.Dense(k * e, use_bias=False, name="v_proj")(x).reshape(b, t, k, e)
        cos, sin = rotary(jnp.arange(t), e, c.rope_theta)  # [T, E]
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]  # [1, T, 1, E]
        q = q * cos + rotate_half(q) * sin
        key = key * cos + rotate_half(key) * sin
        key = jnp.repeat(key, h // k, axis=2)  # [B, T, H, E]
        value = jnp.repeat(value, h // k, axis=2)
        scores = jnp.einsum("bqhe,bkhe->bhqk", q, key) / math.sqrt(e)  # [B, H, T, T]
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum("bhqk,bkhe->bqhe", weights, value).reshape(b, t, h * e)
        return nn.Dense(c.hidden_size, use_bias=False, name="o_proj")(out)  # [B, T, D]


class MLP(nn.Module):
    config: Config

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, D] -> [B, T, D]
        f = self.config.intermediate_size
        gate = nn.Dense(f, use_bias=False, name="gate_proj")(x)  # [B, T, F]
        up = nn.Dense(f, use_bias=False, name="up_proj")(x)
        return nn.Dense(self.config.hidden_size, use_bias=False, name="down_proj")(
            nn.silu(gate) * up
        )


class DecoderLayer(nn.Module):
    config: Config

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:  # [B, T, D]
        c = self.config
        x = x + Attention(c, name="self_attn")(RMSNorm(c, name="input_layernorm")(x), mask)
        return x + MLP(c, name="mlp")(RMSNorm(c, name="post_attention_layernorm")(x))


class Llama(nn.Module):
    config: Config

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array) -> jax.Array:
        # input_ids, attention_mask [B, T] -> last hidden state [B, T, D]
        c = self.config
        t = input_ids.shape[1]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))  # [T, T]
        mask = causal[None, None] & attention_mask[:, None, None, :].astype(bool)  # [B,1,T,T]
        x = nn.Embed(c.vocab_size, c.hidden_size, name="embed_tokens")(input_ids)
        for i in range(c.num_hidden_layers):
            x = DecoderLayer(c, name=f"layers_{i}")(x, mask)
        return RMSNorm(c, name="norm")(x)


def config_from(reference: Any, rms_norm: str = "rsqrt") -> Config:
    """The port's config from a transformers ``LlamaConfig``."""
    hf = reference.config
    rope = getattr(hf, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0))
    return Config(
        vocab_size=hf.vocab_size,
        hidden_size=hf.hidden_size,
        intermediate_size=hf.intermediate_size,
        num_hidden_layers=hf.num_hidden_layers,
        num_attention_heads=hf.num_attention_heads,
        num_key_value_heads=hf.num_key_value_heads,
        rms_norm_eps=hf.rms_norm_eps,
        rope_theta=float(theta),
        rms_norm=rms_norm,
    )


def params_from(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Flax parameters from a PyTorch ``LlamaModel`` state dict (the same weights).

    ``layers.0.mlp.up_proj.weight`` [F, D] -> ``layers_0/mlp/up_proj/kernel`` [D, F]
    (torch's Linear stores out x in, Flax's Dense in x out); embeddings and norm weights
    are copied as they are.
    """
    params: dict[str, Any] = {}
    for name, tensor in state_dict.items():
        array = np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)
        *path, leaf = name.split(".")
        if path[:1] == ["layers"]:
            path = [f"layers_{path[1]}", *path[2:]]
        if leaf == "weight" and path[-1] == "embed_tokens":
            leaf = "embedding"
        elif leaf == "weight" and path[-1].endswith("_proj"):
            leaf, array = "kernel", array.T
        node = params
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = jnp.asarray(array)
    return {"params": params}


def make_port(rms_norm: str) -> Callable[[Any], Callable[[Mapping[str, np.ndarray]], Any]]:
    def port(reference: Any) -> Callable[[Mapping[str, np.ndarray]], Any]:
        model = Llama(config_from(reference, rms_norm))
        params = params_from(reference.state_dict())

        @jax.jit
        def run(input_ids: jax.Array, attention_mask: jax.Array) -> Any:
            return model.apply(params, input_ids, attention_mask, capture_intermediates=True)

        def forward(inputs: Mapping[str, np.ndarray]) -> Any:
            hidden, state = run(inputs["input_ids"], inputs["attention_mask"])
            return {"last_hidden_state": hidden}, state["intermediates"]

        return forward

    return port


#: The exact port: RMSNorm as transformers computes it.
port = make_port("rsqrt")
#: Same maths, different rounding: 1 / sqrt instead of rsqrt.
port_div_sqrt = make_port("div_sqrt")
#: A one-op bug: eps added outside the square root in RMSNorm.
port_eps_outside = make_port("eps_outside")
