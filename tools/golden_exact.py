"""The exact value of a golden case's gradient element: PyTorch's own op on the case's values in
float64, beside the stored (float32) reference and, if given, xent's value. For a failing
`linear_cross_entropy` case of an unseen seed, it tells which of the two f32 computations is the
nearer to the exact value.

Usage: python tools/golden_exact.py FILE.json CASE {input,linear_weight,linear_bias} INDEX [XENT_VALUE]
(linear_cross_entropy files only; needs torch 2.15.)
"""
import json
import sys

import torch
import torch.nn.functional as F

path, name, which, index = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
case = next(c for c in json.load(open(path))["cases"] if c["name"] == name)


def tensor(t):
    if t["dtype"] == "i64":
        return torch.tensor(t["data"], dtype=torch.int64).reshape(t["shape"])
    return torch.tensor([float(v) for v in t["data"]], dtype=torch.float64).reshape(t["shape"])


ins = {k: tensor(v) for k, v in case["inputs"].items()}
for k in ("input", "linear_weight", "linear_bias"):
    if k in ins:
        ins[k].requires_grad_(True)
opts = dict(case["options"])
if "weight" in ins:
    opts["weight"] = ins.pop("weight")
target = ins.pop("target")
out = F.linear_cross_entropy(ins["input"], ins["linear_weight"], target, linear_bias=ins.get("linear_bias"), **opts)
go = tensor(case["grad_output"]).reshape(out.shape) if case.get("grad_output") else torch.ones_like(out)
out.backward(go)
exact = ins[which].grad.reshape(-1)[index].item()
stored = float(case["grad"][which]["data"][index])
line = f"{name} {which}[{index}]: exact {exact:.9e}, reference {stored:.9e} (off {abs(stored - exact):.2e})"
if len(sys.argv) > 5:
    got = float(sys.argv[5])
    line += f", xent {got:.9e} (off {abs(got - exact):.2e})"
print(line)
