"""Measuring training signals: how well a proxy recipe, an estimate or a free score ranks networks.

One module per concern:
- `networks`: the networks file (published networks with their ImageNet top-1), built as published;
- `stats`: rank statistics (Kendall tau, Spearman, matched-latency and resolution pairs);
- `runner`: resumable training of many networks (one CSV row per finished job, appended whole);
- `fidelity`: a proxy recipe against published ImageNet top-1 (`nas proxy fidelity`);
- `truth`: truth sets, networks of a search space sampled inside a latency band and trained long,
  and the fidelity of any score against them (`nas proxy truth`);
- `plots`: the fidelity scatter plot.
The least-squares top-1 fits live with the estimate a search ranks by, in `nas.estimate`.
"""
