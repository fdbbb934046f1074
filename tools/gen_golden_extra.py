"""Extra golden cases from PyTorch, beyond ../shared/golden/gen.py: shapes that span many of
xent's blocks, many classes, and PyTorch's corner cases (ignore_index inside the class range,
full label smoothing, all-zero weights, non-finite logits, broadcast weights).

Usage: python tools/gen_golden_extra.py tests/golden   (needs torch; writes extra_*.json)
Same format as the shared vectors (tests/golden/README.md).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = sys.argv[1]
rng = np.random.default_rng(1234)
DT = {torch.float32: "f32", torch.float64: "f64", torch.int64: "i64"}
TDT = {"f32": torch.float32, "f64": torch.float64}


def enc(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def T(t):
    t = t.detach().cpu()
    dt = DT[t.dtype]
    data = t.reshape(-1).tolist()
    if dt != "i64":
        data = [enc(float(v)) for v in data]
    return {"dtype": dt, "shape": list(t.shape), "data": data}


def rand(shape, dt, scale=3.0):
    return torch.tensor(rng.normal(0, scale, size=shape), dtype=TDT[dt])


def case(name, fn, inputs, options, dtype):
    c = {"name": name, "dtype": dtype, "inputs": {}, "options": options}
    leaves = {}
    call = {}
    for k, v in inputs.items():
        if v is None:
            continue
        if k == "input":
            v = v.detach().clone().requires_grad_(True)
            leaves[k] = v
        call[k] = v
        c["inputs"][k] = T(v)
    try:
        out = fn(**call, **options)
    except Exception as e:
        c["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        return c
    c["output"] = T(out)
    if out.numel() > 0 and out.requires_grad:
        go = torch.tensor(rng.uniform(0.5, 1.5, size=tuple(out.shape)), dtype=out.dtype)
        c["grad_output"] = T(go)
        (g,) = torch.autograd.grad(out, [leaves["input"]], go)
        c["grad"] = {"input": T(g)}
    return c


def ce(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


def nll(input, target, weight=None, ignore_index=-100, reduction="mean"):
    return F.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def idx(shape, C, ignore=None, p=0.1):
    t = torch.tensor(rng.integers(0, C, size=shape), dtype=torch.int64)
    if ignore is not None:
        t[torch.tensor(rng.uniform(size=shape) < p)] = ignore
    return t


out = {"cross_entropy": [], "nll_loss": [], "softmax": [], "log_softmax": [],
       "binary_cross_entropy_with_logits": [], "binary_cross_entropy": []}
for dt in ["f32", "f64"]:
    w19 = torch.tensor(rng.uniform(0.2, 2.0, size=7), dtype=TDT[dt])
    # Many blocks: inner 2500 positions, 7 classes (2340 lanes a block).
    out["cross_entropy"].append(case(f"ce_{dt}_many_blocks", ce, {"input": rand([2, 7, 50, 50], dt),
                                     "target": idx([2, 50, 50], 7, 255), "weight": w19},
                                     {"ignore_index": 255, "reduction": "mean", "label_smoothing": 0.05}, dt))
    # Many classes, rows across blocks.
    out["cross_entropy"].append(case(f"ce_{dt}_C1000", ce, {"input": rand([37, 1000], dt, 5.0),
                                     "target": idx([37], 1000, -100, 0.2)},
                                     {"reduction": "sum", "label_smoothing": 0.2}, dt))
    out["cross_entropy"].append(case(f"ce_{dt}_rows_many_blocks", ce, {"input": rand([4000, 5], dt),
                                     "target": idx([4000], 5, -100)}, {"reduction": "mean"}, dt))
    # ignore_index inside the class range, full smoothing, all-zero weights.
    out["cross_entropy"].append(case(f"ce_{dt}_ignore_class0", ce, {"input": rand([6, 4, 3], dt),
                                     "target": idx([6, 3], 4)}, {"ignore_index": 0, "reduction": "mean"}, dt))
    out["cross_entropy"].append(case(f"ce_{dt}_smoothing_one", ce, {"input": rand([5, 3], dt),
                                     "target": idx([5], 3)}, {"label_smoothing": 1.0, "reduction": "mean"}, dt))
    out["cross_entropy"].append(case(f"ce_{dt}_zero_weights_mean", ce, {"input": rand([4, 3], dt),
                                     "target": idx([4], 3), "weight": torch.zeros(3, dtype=TDT[dt])},
                                     {"reduction": "mean"}, dt))
    x = rand([4, 3], dt)
    x[0, 1] = float("nan")
    x[2, 0] = float("inf")
    out["cross_entropy"].append(case(f"ce_{dt}_nonfinite_none", ce, {"input": x, "target": torch.tensor([1, 0, 2, 1])},
                                     {"reduction": "none"}, dt))
    out["cross_entropy"].append(case(f"ce_{dt}_spatial_ones", ce, {"input": rand([3, 5, 1, 1], dt),
                                     "target": idx([3, 1, 1], 5)}, {"reduction": "sum", "label_smoothing": 0.3}, dt))
    p = torch.tensor(rng.normal(0, 1, size=[3, 4, 5]), dtype=TDT[dt])  # unnormalised, negative
    out["cross_entropy"].append(case(f"ce_prob_{dt}_negative_targets", ce, {"input": rand([3, 4, 5], dt), "target": p,
                                     "weight": torch.tensor([0.5, 1.0, 2.0, 0.0], dtype=TDT[dt])},
                                     {"reduction": "mean", "label_smoothing": 0.1}, dt))
    out["nll_loss"].append(case(f"nll_{dt}_many_blocks", nll, {"input": rand([2, 3, 6000], dt),
                                "target": idx([2, 6000], 3, 7), "weight": torch.tensor([1.0, 0.5, 2.0], dtype=TDT[dt])},
                                {"ignore_index": 7, "reduction": "mean"}, dt))
    for op, fn in [("softmax", lambda input, dim: F.softmax(input, dim=dim)),
                   ("log_softmax", lambda input, dim: F.log_softmax(input, dim=dim))]:
        out[op].append(case(f"{op}_{dt}_dim0_wide", fn, {"input": rand([7, 3000], dt)}, {"dim": 0}, dt))
        out[op].append(case(f"{op}_{dt}_many_blocks", fn, {"input": rand([2, 3, 6000], dt)}, {"dim": 1}, dt))
        out[op].append(case(f"{op}_{dt}_last_of_5d", fn, {"input": rand([2, 3, 2, 3, 4], dt)}, {"dim": -1}, dt))
    x = rand([2, 4, 50, 60], dt, 6.0)
    y = torch.tensor(rng.uniform(size=[2, 4, 50, 60]) < 0.1, dtype=TDT[dt])
    pw = torch.tensor(rng.uniform(1, 40, size=[4, 1, 1]), dtype=TDT[dt])
    w = torch.tensor(rng.uniform(0, 2, size=[2, 1, 50, 1]), dtype=TDT[dt])
    out["binary_cross_entropy_with_logits"].append(case(
        f"bcel_{dt}_many_blocks_broadcast", lambda input, target, weight, pos_weight, reduction:
        F.binary_cross_entropy_with_logits(input, target, weight=weight, pos_weight=pos_weight, reduction=reduction),
        {"input": x, "target": y, "weight": w, "pos_weight": pw}, {"reduction": "mean"}, dt))
    x = torch.tensor([1e30, -1e30, 50.0, -50.0, 0.0], dtype=TDT[dt])
    out["binary_cross_entropy_with_logits"].append(case(
        f"bcel_{dt}_huge_logits", lambda input, target, reduction: F.binary_cross_entropy_with_logits(input, target, reduction=reduction),
        {"input": x, "target": torch.tensor([0.0, 1.0, 0.3, 0.7, 0.5], dtype=TDT[dt])}, {"reduction": "none"}, dt))
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-30, 1 - 1e-7], dtype=TDT[dt])
    out["binary_cross_entropy"].append(case(
        f"bce_{dt}_edges", lambda input, target, reduction: F.binary_cross_entropy(input, target, reduction=reduction),
        {"input": p, "target": torch.tensor([0.5, 0.5, 0.0, 1.0, 1.0, 0.0], dtype=TDT[dt])}, {"reduction": "none"}, dt))

# Large logits with a large pos_weight: (q y + 1 - y) sigmoid(x) - q y cancels, and the gradient
# is PyTorch's only when rounded in its order (after the loop, so that the cases above keep their
# random draws).
for dt in ["f32", "f64"]:
    x = torch.linspace(2.0, 14.0, 48, dtype=TDT[dt]).reshape(4, 1, 3, 4)
    y = torch.tensor([1.0, 1.0, 0.9, 0.0] * 12, dtype=TDT[dt]).reshape(4, 1, 3, 4)
    pw = torch.tensor([31.9], dtype=TDT[dt])
    for reduction in ["sum", "none"]:
        out["binary_cross_entropy_with_logits"].append(case(
            f"bcel_{dt}_cancel_pos_weight_{reduction}", lambda input, target, pos_weight, reduction:
            F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction=reduction),
            {"input": x, "target": y, "pos_weight": pw}, {"reduction": reduction}, dt))

for op, cs in out.items():
    with open(os.path.join(OUT, f"extra_{op}.json"), "w") as f:
        json.dump({"op": op, "generator": f"torch {torch.__version__} (tools/gen_golden_extra.py)", "cases": cs}, f,
                  separators=(",", ":"))
    print(op, len(cs), "cases")
