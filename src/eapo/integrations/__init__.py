"""Adapters that run EAPO inside other RL engines (verl). Each imports its engine lazily,
so `eapo` itself never needs them installed."""
