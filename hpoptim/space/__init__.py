"""The search space: distributions (plain descriptions of a domain) and :class:`SearchSpace`."""

from __future__ import annotations

from hpoptim.space.search import SearchSpace, did_you_mean, flatten, nest, unknown_key_problems

__all__ = ["SearchSpace", "did_you_mean", "flatten", "nest", "unknown_key_problems"]
