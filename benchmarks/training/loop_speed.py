"""Does `sqnxt-edge train` keep a bare PyTorch loop's speed? Images/s of epoch 2 of each, in fresh processes,
interleaved rounds: a bare SGD loop (same model, batch, real digits pre-resized to 32 px, no augmentation, no test
pass) against `sqnxt-edge train` run under a pseudo-terminal (`script`), so its progress bar is really drawn.
Each under every OpenMP wait policy asked, on an idle machine and beside one busy process (a loaded machine).

    python benchmarks/training/loop_speed.py --rounds 3 -o benchmarks/training/loop_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = r"""
import json, sys, time, torch, torch.nn.functional as F
from sqnxt_edge.data import load_dataset, preprocess, resize_uint8
from sqnxt_edge.models import create_model
model_name, batch, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
ds = load_dataset("digits", "train")
x_all = preprocess(torch.from_numpy(resize_uint8(ds.images, 32)), 32, ds.mean, ds.std)
y_all = torch.from_numpy(ds.labels).long()
model = create_model(model_name, 10, 32).train()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
rates = []
for epoch in range(epochs):
    order = torch.randperm(len(y_all))
    t0, n = time.perf_counter(), 0
    for i in range(0, len(order) - 1, batch):
        idx = order[i:i + batch]
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss)
        n += len(idx)
    rates.append(n / (time.perf_counter() - t0))
print(json.dumps(rates))
"""


def bare(model: str, batch: int, epochs: int, env: dict) -> float:
    out = subprocess.run(
        [sys.executable, "-c", BARE, model, str(batch), str(epochs)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])[-1]


def cli(model: str, batch: int, epochs: int, env: dict) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "sqnxt_edge",
            "train",
            "--model",
            model,
            "--data",
            "digits",
            "--batch-size",
            str(batch),
            "--epochs",
            str(epochs),
            "--out",
            f"{tmp}/run",
        ]
        subprocess.run(
            ["script", "-qec", shlex.join(cmd), "/dev/null"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        records = [json.loads(line) for line in Path(tmp, "run", "metrics.jsonl").read_text().splitlines()]
    return records[-1]["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("--batch", type=int, nargs="+", default=[16])
    p.add_argument("--epochs", type=int, default=2, help="the last epoch's images/s is kept (the first warms up)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--policies", nargs="+", default=["default", "PASSIVE"], help="OMP_WAIT_POLICY values")
    p.add_argument("--threads", nargs="+", default=["default"], help="OMP_NUM_THREADS values (default: torch's)")
    p.add_argument("--loads", nargs="+", default=["idle", "busy"], help="idle, busy (one spinning process beside)")
    p.add_argument("--what", nargs="+", default=["bare", "cli"])
    p.add_argument(
        "--cells",
        nargs="+",
        default=None,
        metavar="POLICY:THREADS",
        help="instead of every policy x threads, only these pairs (e.g. default:default PASSIVE:2)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("loop_speed.json"))
    args = p.parse_args()
    from sqnxt_edge.artifacts import atomic_write
    from sqnxt_edge.runner import environment

    load_before, rows = [round(v, 2) for v in os.getloadavg()], []
    for load in args.loads:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
        try:
            time.sleep(1 if spinner else 0)
            for batch in args.batch:
                pairs = (
                    [tuple(c.split(":")) for c in args.cells]
                    if args.cells
                    else [(pol, th) for pol in args.policies for th in args.threads]
                )
                cells = {(w, pol, th): [] for w in args.what for pol, th in pairs}
                for r in range(args.rounds):
                    order = list(cells) if r % 2 == 0 else list(cells)[::-1]  # drift hits every cell alike
                    for what, pol, th in order:
                        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
                        for var, value in (("OMP_WAIT_POLICY", pol), ("OMP_NUM_THREADS", th)):
                            if value != "default":
                                env[var] = value
                        cells[(what, pol, th)].append(
                            round((bare if what == "bare" else cli)(args.model, batch, args.epochs, env), 1)
                        )
                        print(load, batch, what, pol, th, cells[(what, pol, th)][-1], flush=True)
                for (what, pol, th), rates in cells.items():
                    rows.append(
                        {
                            "load": load,
                            "batch": batch,
                            "what": what,
                            "omp_wait_policy": pol,
                            "omp_num_threads": th,
                            "images_per_s": rates,
                            "median": statistics.median(rates),
                        }
                    )
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()
    for row in rows:
        if row["what"] == "cli":
            ref = next(
                (
                    b
                    for b in rows
                    if b["what"] == "bare"
                    and all(b[k] == row[k] for k in ("load", "batch", "omp_wait_policy", "omp_num_threads"))
                ),
                None,
            )
            if ref:
                row["vs_bare_same_policy"] = round(row["median"] / ref["median"], 3)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": args.model,
        "epochs": args.epochs,
        "loadavg_before": load_before,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "env": environment(),
        "rows": rows,
    }
    atomic_write(args.output, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))
    for row in rows:
        print(
            f"{row['load']:5} b{row['batch']:<4} {row['what']:4} {row['omp_wait_policy']:8} "
            f"t{row['omp_num_threads']:8} "
            f"{row['median']:7.1f} img/s  {row.get('vs_bare_same_policy', '')}"
        )


if __name__ == "__main__":
    main()
