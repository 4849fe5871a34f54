"""How fast are the builtin FGSM and PGD plugins?

Trains the builtin ``le_net`` on scikit-learn's digits, then times, on the 450-digit test
set and the same model:

* the builtin plugins ``attacks.fgm.generate_fgm`` / ``attacks.pgd.generate_pgd``;
* a plain PyTorch implementation of the same attacks written below (the lower bound:
  NumPy in, NumPy out, nothing else);
* ART's ``FastGradientMethod`` / ``ProjectedGradientDescent`` called directly.

All three get the true labels, the same batch size and L-inf eps; PGD uses a random start
and ``--pgd-steps`` steps of ``eps / 4``.  Runs are interleaved (one of each per round) and
the median over rounds is reported, with the ratios to plain PyTorch (target for the
builtin: <= 1.2).

    PYTHONPATH=src:task-plugins .venv/bin/python benchmarks/attack_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from dioptra import pyplugs


def plain_fgsm(model, x_np, y_np, eps, batch_size):
    out = np.empty_like(x_np)
    model.eval()
    for start in range(0, len(x_np), batch_size):
        x = torch.from_numpy(x_np[start : start + batch_size]).requires_grad_(True)
        y = torch.from_numpy(y_np[start : start + batch_size])
        grad = torch.autograd.grad(F.cross_entropy(model(x), y), x)[0]
        out[start : start + batch_size] = (x + eps * grad.sign()).clamp(0, 1).detach().numpy()
    return out


def plain_pgd(model, x_np, y_np, eps, eps_step, steps, batch_size, generator):
    out = np.empty_like(x_np)
    model.eval()
    for start in range(0, len(x_np), batch_size):
        x0 = torch.from_numpy(x_np[start : start + batch_size])
        y = torch.from_numpy(y_np[start : start + batch_size])
        noise = (torch.rand(x0.shape, generator=generator) * 2 - 1) * eps
        x = (x0 + noise).clamp(0, 1)
        for _ in range(steps):
            x.requires_grad_(True)
            grad = torch.autograd.grad(F.cross_entropy(model(x), y), x)[0]
            x = x.detach() + eps_step * grad.sign()
            x = (x0 + (x - x0).clamp(-eps, eps)).clamp(0, 1)
        out[start : start + batch_size] = x.numpy()
    return out


def train_model(threads: int):
    torch.set_num_threads(threads)
    d = pyplugs.call("dioptra_builtins.data", "digits", "load_digits_dataset", seed=0)
    clf = pyplugs.call("dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
                       "le_net", (1, 8, 8), 10, learning_rate=3e-3, seed=0)
    start = time.perf_counter()
    pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, d["x_train"],
                 d["y_train"], {"nb_epochs": 12, "batch_size": 64})
    return clf, d, time.perf_counter() - start


def time_rounds(candidates: dict, rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    for _ in range(warmup):
        for run in candidates.values():
            run()
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def report(title, times, accuracies):
    plain = statistics.median(times["plain torch"])
    print(f"\n{title}")
    print(f"  {'implementation':<14} {'median ms':>10} {'min ms':>8} {'x plain':>8} {'adv acc':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<14} {1000 * median:>10.2f} {1000 * min(values):>8.2f} "
              f"{median / plain:>8.2f} {accuracies[name]:>8.3f}")
    return {name: statistics.median(v) / plain for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()

    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        clf, d, train_seconds = train_model(args.threads)
        x, y = d["x_test"], d["y_test"]
        y_onehot = np.eye(10, dtype=np.float32)[y]
        model = clf.model
        eps, step, bs = args.eps, args.eps / 4, args.batch_size
        clean = np.mean(clf.predict(x).argmax(1) == y)
        print(f"le_net on digits: trained in {train_seconds:.1f} s, clean test accuracy "
              f"{clean:.3f}; {len(x)} test digits, batch {bs}, eps {eps}, "
              f"torch threads {torch.get_num_threads()}, torch {torch.__version__}")

        fgm = pyplugs.get("dioptra_builtins.attacks", "fgm", "generate_fgm")
        pgd = pyplugs.get("dioptra_builtins.attacks", "pgd", "generate_pgd")
        art_fgm = FastGradientMethod(clf, eps=eps, batch_size=bs)
        art_pgd = ProjectedGradientDescent(clf, eps=eps, eps_step=step, max_iter=args.pgd_steps,
                                           num_random_init=1, batch_size=bs, verbose=False)
        generator = torch.Generator().manual_seed(0)
        fgsm_runs = {
            "plain torch": lambda: plain_fgsm(model, x, y, eps, bs),
            "builtin": lambda: fgm(clf, x, y, eps=eps, batch_size=bs),
            "ART": lambda: art_fgm.generate(x, y=y_onehot),
        }
        pgd_runs = {
            "plain torch": lambda: plain_pgd(model, x, y, eps, step, args.pgd_steps, bs, generator),
            "builtin": lambda: pgd(clf, x, y, eps=eps, eps_step=step, max_iter=args.pgd_steps,
                                   batch_size=bs, seed=0),
            "ART": lambda: art_pgd.generate(x, y=y_onehot),
        }

        def adv_accuracy(runs):
            return {name: float(np.mean(clf.predict(run()).argmax(1) == y))
                    for name, run in runs.items()}

        fgsm_ratios = report("FGSM (L-inf)", time_rounds(fgsm_runs, args.rounds),
                             adv_accuracy(fgsm_runs))
        pgd_ratios = report(f"PGD (L-inf, {args.pgd_steps} steps, random start)",
                            time_rounds(pgd_runs, max(5, args.rounds // 3)),
                            adv_accuracy(pgd_runs))

    print("\nratios of median times (builtin target <= 1.2 x plain torch):")
    for title, ratios in (("FGSM", fgsm_ratios), ("PGD", pgd_ratios)):
        verdict = "OK" if ratios["builtin"] <= 1.2 else "SLOWER THAN TARGET"
        print(f"  {title}: builtin / plain = {ratios['builtin']:.2f} ({verdict}); "
              f"ART / plain = {ratios['ART']:.2f}; ART / builtin = "
              f"{ratios['ART'] / ratios['builtin']:.2f}")


if __name__ == "__main__":
    main()
