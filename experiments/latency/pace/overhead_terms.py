"""Which overhead-model terms generalise from random networks to networks outside the space.

    python experiments/latency/pace/overhead_terms.py experiments/latency/pace/paced-validation-output.txt \
        "{'ops_ms': 0.948238, 'const': -0.0984157, 'weights_m': 0.0464368}"

Reads a `nas latency validate` output (per network: sum of ops, measured, table-complete
prediction), recovers each network's table-complete sum of ops from the table's overhead model
(the second argument), fits candidate overhead models on the 60 random networks and reports
their leave-one-out error there and their error on the 11 outside networks (never fitted on).
"""
import re, sys, numpy as np
from nas.latency.build import validation_archs
from nas.latency.validate import outside_networks
from nas.latency.model import network_terms
from nas.space import load_space
from nas.paths import SEARCH_SPACES
log, coef = sys.argv[1], eval(sys.argv[2])
rows = {}
for line in open(log):
    p = line.split()
    if len(p) == 10 and re.match(r"^(val\d+|mobilenet|mnasnet|proxyless)", p[0]):
        rows[p[0]] = dict(sum=float(p[5]), pred=float(p[6]), meas=float(p[7]), cf=float(p[8]), comp=float(p[9]))
space = load_space(SEARCH_SPACES / "mobilenet_v3.yaml")
archs = {a.name: a for a in validation_archs(space, 60) + outside_networks()}
def terms(a, S):
    t = network_terms(a, S)
    ls = a.layers()
    bnd = 0.0
    for l in ls:
        cin = l.cin * (l.size ** 2 if l.kind != "fc" else 1)
        cout = l.cout * (l.out_size ** 2 if l.kind not in ("fc", "pool") else 1)
        bnd += (cin + cout) / 1e6
    t["boundary_m"] = bnd
    return t
X = []
for n, r in rows.items():
    a = archs[n]
    t0 = network_terms(a, 0)
    S = (r["comp"] - coef["const"] - coef["weights_m"] * t0["weights_m"]) / coef["ops_ms"]
    X.append((n, terms(a, S), r["meas"]))
names = [x[0] for x in X]
rand = [i for i, n in enumerate(names) if n.startswith("val")]
out = [i for i, n in enumerate(names) if not n.startswith("val")]
y = np.array([x[2] for x in X])
def fit(idx, use):
    A = np.array([[X[i][1][u] for u in use] for i in idx]); w = 1 / y[idx]
    c, *_ = np.linalg.lstsq(A * w[:, None], y[idx] * w, rcond=None); return c
def pred(idx, use, c): return np.array([[X[i][1][u] for u in use] for i in idx]) @ c
for use in [("ops_ms",), ("ops_ms","const"), ("ops_ms","const","weights_m"), ("ops_ms","const","boundary_m"),
            ("ops_ms","const","weights_m","boundary_m"), ("ops_ms","const","act_m"), ("ops_ms","const","n_ops"),
            ("ops_ms","const","weights_m","act_m"), ("ops_ms","boundary_m"), ("ops_ms","const","weights_m","n_ops","boundary_m")]:
    c = fit(rand, use)
    loo = np.array([pred([i], use, fit([j for j in rand if j != i], use))[0] for i in rand])
    e_r = np.abs(loo / y[rand] - 1); e_o = np.abs(pred(out, use, c) / y[out] - 1)
    print(f"{'+'.join(use):45s} random LOO MAPE {100*e_r.mean():5.2f} w10 {100*np.mean(e_r<=.1):5.1f} | outside MAPE {100*e_o.mean():5.2f} w10 {100*np.mean(e_o<=.1):5.1f} worst {100*e_o.max():5.1f}  coef {np.round(c,4)}")
