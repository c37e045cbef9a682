"""GPT-2 small (random weights) forward and forward+capture in PyTorch, for the engines bench.

Capture as the product does it: summed next-token loss, backward through activations only (weights
do not require gradients), keeping every MLP matrix's input and output gradient. Prints JSON.
Usage: python3 torch-gpt2.py TOKENS THREADS REPEATS
"""
import json
import math
import statistics
import sys
import time

import torch

T, THREADS, REPEATS = (int(x) for x in sys.argv[1:4])
torch.set_num_threads(THREADS)
torch.manual_seed(0)
V, C, L, H, F = 50257, 768, 12, 12, 3072


def param(*shape):
    return torch.randn(*shape) * 0.02


wte, wpe = param(V, C), param(1024, C)
blocks = [dict(attn_w=param(C, 3 * C), attn_b=torch.zeros(3 * C), proj_w=param(C, C), proj_b=torch.zeros(C),
               fc_w=param(C, F), fc_b=torch.zeros(F), mproj_w=param(F, C), mproj_b=torch.zeros(C)) for _ in range(L)]
ln = lambda x: torch.nn.functional.layer_norm(x, (C,))


def gelu(h):
    return 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))


def forward(ids, capture):
    x = wte[ids] + wpe[: ids.shape[1]]
    if capture:
        x.requires_grad_(True)
    saved = []
    mask = torch.full((T, T), float("-inf")).triu(1)
    for b in blocks:
        q, k, v = (ln(x) @ b["attn_w"] + b["attn_b"]).split(C, dim=2)
        q, k, v = (t.view(1, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // H) + mask, dim=-1) @ v
        x = x + att.transpose(1, 2).reshape(1, T, C) @ b["proj_w"] + b["proj_b"]
        u = ln(x)
        h = u @ b["fc_w"] + b["fc_b"]
        act = gelu(h)
        m = act @ b["mproj_w"] + b["mproj_b"]
        if capture:
            h.retain_grad()
            m.retain_grad()
        saved.append((u, h, act, m))
        x = x + m
    return ln(x) @ wte.t(), saved


ids = torch.randint(0, V, (1, T))


def run_forward():
    with torch.no_grad():
        forward(ids, False)


def run_capture():
    logits, saved = forward(ids, True)
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
    loss.backward()
    return [(u.detach(), h.grad, act.detach(), m.grad) for u, h, act, m in saved]


def median_seconds(fn):
    fn()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# The BLAS behind torch decides everything: Debian's python3-torch runs on whichever libblas.so.3 is
# installed (reference BLAS runs at a few GFLOP/s, OpenBLAS at about 170), so the rate is reported.
a = torch.randn(1024, 1024)
matmul_gflops = 2 * 1024 ** 3 / median_seconds(lambda: a @ a) / 1e9

print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "matmul_gflops": matmul_gflops,
                  "forward_tokens_per_s": T / median_seconds(run_forward), "capture_tokens_per_s": T / median_seconds(run_capture)}))
