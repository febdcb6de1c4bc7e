"""1-D convolutions as matrix products: :class:`Conv1D` over the shifted windows (im2col), for
Caser, and :class:`TokenConv1D` over embedded token ids, for the two-tower text CNN.

Not ``nn.Conv``: inside the training loop's compiled while-loop, XLA's CPU convolution and its
gradient are several times slower than outside it, and than matrix products (measured with a sum
of shifted products, this module's first form):
- the two-tower text CNN at ML-100K size: 355 ms a step against 32 ms (2-core CPU, load 12);
- Caser at Amazon Beauty size (22,363 users, 12,101 items, L = 20, batch 256): 9.3 s an epoch of
  88 steps against 2.4 s (quiet machine, ``jax.lax.fori_loop`` as in ``recbench.train``); the
  same steps called one by one from Python took 3.1 s either way.

Parameters have ``nn.Conv``'s names, shapes and initialisers (``kernel`` ``[width, in, filters]``,
LeCun normal over ``width x in``; ``bias`` zeros), so a module built under ``nn.Conv``'s name
draws the same initial values and loads the same saved parameters; its outputs equal the
convolution's up to float rounding (the products are summed in another order).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


def _parameters(module: nn.Module, channels: int) -> tuple[jax.Array, jax.Array]:
    """``nn.Conv``'s kernel ``[width, channels, filters]`` and bias, under its names."""
    kernel = module.param("kernel", nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2),
                          (module.width, channels, module.filters))
    return kernel, module.param("bias", nn.initializers.zeros, (module.filters,))


class Conv1D(nn.Module):
    """``[N, T, C] -> [N, T, filters]``, zero padding of ``before`` positions on the left and
    ``width - 1 - before`` on the right (``before = width - 1``: causal; ``(width - 1) // 2``:
    'same')."""

    filters: int
    width: int
    before: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w, bias = _parameters(self, x.shape[-1])
        padded = jnp.pad(x, ((0, 0), (self.before, self.width - 1 - self.before), (0, 0)))
        n, t, c = x.shape
        # im2col: the shifted windows side by side, then one 2-D product. A text CNN at ML-1M
        # size (3,706 items x 8 tokens, 32 -> 32 channels, width 3), forward and backward in a
        # compiled loop: 3.2 ms a step, against 10.9 ms for a sum of three 3-D products.
        # (TokenConv1D, for the two-tower text CNN, cut that CNN from ~9 to ~6 ms a step.)
        windows = jnp.concatenate([padded[:, k:k + t] for k in range(self.width)], axis=-1)
        out = (windows.reshape(n * t, self.width * c) @ w.reshape(self.width * c, self.filters))
        return out.reshape(n, t, self.filters) + bias


class TokenConv1D(nn.Module):
    """``Conv1D(table[tokens])`` for ``[N, T]`` token ids into a ``[V, C]`` table whose id 0 is
    padding (a zero input, like the positions past either end), with :class:`Conv1D`'s
    parameters.

    Computed the other way round: each kernel tap times the whole table first (``[V, C] x [C,
    width * filters]``), then the output at a position is the sum of ``width`` gathered rows of
    those products. A catalogue's texts hold more tokens than its vocabulary has words (ML-1M
    size: 3,706 x 8 positions against 5,000 words), and the windows of embeddings, their
    product and its gradient are never formed."""

    filters: int
    width: int
    before: int

    @nn.compact
    def __call__(self, table: jax.Array, tokens: jax.Array) -> jax.Array:
        w, bias = _parameters(self, table.shape[-1])
        v, c = table.shape
        taps = table @ jnp.transpose(w, (1, 0, 2)).reshape(c, self.width * self.filters)
        taps = jnp.where((jnp.arange(v) > 0)[:, None], taps, 0.0)  # id 0: padding
        taps = taps.reshape(v * self.width, self.filters)  # row id * width + k: tap k of word id
        padded = jnp.pad(tokens, ((0, 0), (self.before, self.width - 1 - self.before)))
        t = tokens.shape[1]
        out = sum(taps[padded[:, k:k + t] * self.width + k] for k in range(self.width))
        return out + bias
