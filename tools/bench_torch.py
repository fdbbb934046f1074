"""PyTorch on the workloads of `xent bench`, for a side-by-side comparison (see BENCHMARKS.md).

Usage: python tools/bench_torch.py [--threads 2] [--runs 10] [--dtype f32|bf16|f16]
Prints one JSON object per workload, the keys of `xent bench --format json`. With `--dtype bf16`
or `f16`, the cross-entropy workloads (seg19, cls1k, lm32k, cls2, cls19) on PyTorch's native half
path: logits and class weights in that type, as a mixed-precision training loop hands them over. Exits 0 with a
message when torch is not installed: it is no dependency of xent.
For PyTorch "at its best", run it with glibc told to reuse freed memory:
MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184 python tools/bench_torch.py
"""
import argparse
import json
import statistics
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed: nothing to compare")
    raise SystemExit(0)

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=10)
ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
args = ap.parse_args()
DT = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
torch.set_num_threads(args.threads)
g = torch.Generator().manual_seed(0)


def timed(f):
    f()
    t = []
    for _ in range(args.runs):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t), min(t)


def report(name, nbytes, fwd, fb=None):
    print(json.dumps({"workload": name, "dtype": args.dtype, "threads": args.threads, "bytes": nbytes, "forward_ms": fwd[0],
                      "forward_min_ms": fwd[1], "forward_backward_ms": fb[0] if fb else None,
                      "forward_backward_min_ms": fb[1] if fb else None}), flush=True)


def workload(name, inp, loss):
    """Times loss(inp), then loss(inp).backward() on a copy of inp that wants its gradient."""
    fwd = timed(lambda: loss(inp))
    xr = inp.clone().requires_grad_(True)

    def fb():
        xr.grad = None
        loss(xr).backward()
    report(name, inp.numel() * inp.element_size(), fwd, timed(fb))


def ce(name, shape, target, **kw):
    x = (torch.randn(shape, generator=g) * 2).to(DT)
    t = target(shape)
    if "weight" in kw:
        kw["weight"] = kw["weight"].to(DT)
    workload(name, x, lambda i: F.cross_entropy(i, t, **kw))


def seg_t(shape):
    t = torch.randint(0, shape[1], (shape[0],) + tuple(shape[2:]), generator=g)
    t[torch.rand(t.shape, generator=g) < 0.05] = 255
    return t


ce("seg19", (8, 19, 256, 512), seg_t, weight=torch.rand(19, generator=g) * 1.5 + 0.5, ignore_index=255)

# seed2: the seed's inverse frequency from the batch, timed with the loss.
x = torch.randn(16, 2, 512, 512, generator=g) * 2
t = (torch.rand(16, 512, 512, generator=g) < 0.03).long()


def seed_loss(inp):
    alpha = t.sum() / t.numel()
    return F.cross_entropy(inp, t, weight=torch.stack([alpha, 1 - alpha]).float())


if DT == torch.float32:
    workload("seed2", x, seed_loss)
ce("cls1k", (16384, 1000), lambda s: torch.randint(0, 1000, (s[0],), generator=g), label_smoothing=0.1)


def lm_t(s):
    t = torch.randint(0, 32000, (s[0],), generator=g)
    t[torch.rand(t.shape, generator=g) < 0.1] = -100
    return t


ce("lm32k", (4096, 32000), lm_t)
if DT != torch.float32:
    ce("cls2", (1 << 22, 2), lambda s: torch.randint(0, 2, (s[0],), generator=g))
    ce("cls19", (1 << 20, 19), lambda s: torch.randint(0, 19, (s[0],), generator=g))
    raise SystemExit(0)
x = torch.randn(16, 1, 512, 512, generator=g) * 2
y = (torch.rand(x.shape, generator=g) < 0.03).float()
pw = torch.tensor([32.3])
workload("bce", x, lambda i: F.binary_cross_entropy_with_logits(i, y, pos_weight=pw))
lab = torch.randint(0, 19, (64, 512, 1024), generator=g, dtype=torch.uint8)
lab[torch.rand(lab.shape, generator=g) < 0.05] = 255
report("count", lab.numel(), timed(lambda: torch.bincount(lab[lab != 255].long(), minlength=19)))
src = torch.randn(8 * 19 * 256 * 512, generator=g)
dst = torch.empty_like(src)
report("copy", src.numel() * 4, timed(lambda: dst.copy_(src)))

# Beyond the workloads: classification rows with few classes, softmax, soft labels.
ce("cls2", (1 << 22, 2), lambda s: torch.randint(0, 2, (s[0],), generator=g))
ce("cls19", (1 << 20, 19), lambda s: torch.randint(0, 19, (s[0],), generator=g))
x = torch.randn(8, 19, 256, 512, generator=g) * 2
report("softmax19", x.numel() * 4, timed(lambda: torch.softmax(x, 1)))
y = torch.rand(x.shape, generator=g) * (2 / 19)
workload("probs19", x, lambda i: F.cross_entropy(i, y))


# MONAI's FocalLoss(use_softmax=True, gamma=2) on seg19's shape, as MONAI computes it:
# one-hot targets, -(1 - p)^gamma ln p over every class, mean.
t19 = torch.randint(0, 19, (8, 256, 512), generator=g)
hot = F.one_hot(t19, 19).permute(0, 3, 1, 2).float()


def focal(inp):
    ls = inp.log_softmax(1)
    return (-(1 - ls.exp()).pow(2.0) * ls * hot).mean()


workload("focal19", x, focal)


# MONAI's FocalLoss(gamma=2), its default sigmoid, as MONAI computes it:
# bce_with_logits(x, t) e^(gamma ln sigmoid(-x (2t - 1))), mean.
def sigfocal(inp):
    loss = F.binary_cross_entropy_with_logits(inp, hot, reduction="none")
    return ((F.logsigmoid(-inp * (hot * 2 - 1)) * 2.0).exp() * loss).mean()


workload("sigfocal19", x, sigfocal)


# torchvision.ops.sigmoid_focal_loss(alpha=0.25, gamma=2, reduction="mean"), its code, on bce's
# logits and targets.
xb = torch.randn(16, 1, 512, 512, generator=g) * 2
yb = (torch.rand(xb.shape, generator=g) < 0.03).float()


def tvfocal(inp):
    p = torch.sigmoid(inp)
    ce = F.binary_cross_entropy_with_logits(inp, yb, reduction="none")
    p_t = p * yb + (1 - p) * (1 - yb)
    loss = ce * ((1 - p_t) ** 2.0)
    return ((0.25 * yb + 0.75 * (1 - yb)) * loss).mean()


workload("tvfocal", xb, tvfocal)

# binary_cross_entropy on probabilities: bce's logits through a sigmoid, its targets, mean.
workload("bceprob", torch.sigmoid(xb), lambda i: F.binary_cross_entropy(i, yb))


# linear_cross_entropy (PyTorch 2.15) of N = 2048 tokens, D = 1024, a vocabulary of 32000, 10% of
# the targets ignored: the reference path (options=None, which forms the logits) as "lmhead", the
# chunked path (LinearCrossEntropyOptions()) as "lmhead-chunked". At most 3 runs: each takes seconds.
if hasattr(F, "linear_cross_entropy"):
    from torch.nn import LinearCrossEntropyOptions
    n, d, c = 2048, 1024, 32000
    x = torch.randn(n, d, generator=g)
    w = torch.randn(c, d, generator=g) * 0.02
    t = torch.randint(0, c, (n,), generator=g)
    t[torch.rand(n, generator=g) < 0.1] = -100
    runs, args.runs = args.runs, min(args.runs, 3)
    for name, opt in [("lmhead", None), ("lmhead-chunked", LinearCrossEntropyOptions())]:
        fwd = timed(lambda: F.linear_cross_entropy(x, w, t, options=opt))
        xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)

        def fb():
            xr.grad = wr.grad = None
            F.linear_cross_entropy(xr, wr, t, options=opt).backward()
        report(name, (x.numel() + w.numel()) * 4, fwd, timed(fb))
    args.runs = runs
