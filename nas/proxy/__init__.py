"""Measuring training signals: how well a proxy recipe, an estimate or a free score ranks networks.

One module per concern:
- `runner`: resumable training of many networks (one CSV row per finished job, appended whole);
- `truth`: truth sets, networks of a search space sampled inside a latency band and trained long,
  and the fidelity of any score against them.
"""
