"""Run the digits-defenses example on a testbed through the Dioptra client.

train (undefended, with Gaussian augmentation, adversarially) -> fgm and pgd against each
model -> infer (the undefended model also behind feature squeezing, JPEG compression and
spatial smoothing) -> report: one table, defense x attack. Exits 1 if a job failed.

    python examples/digits-defenses/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402
from _driver import Step  # noqa: E402

# The attack entry points are those of digits-evasion, shipped in this archive too.
EVASION = HERE.parent / "digits-evasion"
BORROWED = [EVASION / "fgm.py", EVASION / "pgd.py"]
# Longest training first: jobs start in the order they are submitted.
TRAINING_DEFENSES = ("adversarial_training", "gaussian_augmentation", "none")
PREPROCESSING = "none,feature_squeezing,jpeg_compression,spatial_smoothing"
EPS = 0.15


def steps(eps: float = EPS, epochs: int = 10, seed: int = 0) -> list[Step]:
    chain, infers = [], []
    for defense in TRAINING_DEFENSES:
        params = {"defense": defense, "epochs": epochs, "seed": seed}
        if defense == "adversarial_training":
            params["adv_eps"] = eps  # train against the budget of the attacks
        train = Step(f"train {defense}", "train", params)
        model = {"model_run_id": train, "eps": eps, "seed": seed}
        fgm = Step(f"fgm {defense}", "fgm", model, after=train)
        pgd = Step(f"pgd {defense}", "pgd", {**model, "eps_step": eps / 4, "max_iter": 10},
                   after=train)
        infer = Step(f"infer {defense}", "infer", {
            "model_run_id": train,
            "adv_run_ids": [fgm, pgd],
            # input pre-processing defenses go in front of the undefended model
            "preprocessing": PREPROCESSING if defense == "none" else "none",
        }, after=pgd)
        chain += [train, fgm, pgd, infer]
        infers.append(infer)
    chain.append(Step("report", "report", {"runs": infers}, after=infers[-1]))
    return chain


def run(address: str, queue: str = _driver.DEFAULT_QUEUE,
        experiment: str = "digits-defenses", eps: float = EPS, epochs: int = 10,
        seed: int = 0, timeout: str = "1h", out=print) -> _driver.Outcome:
    return _driver.run_example(HERE, steps(eps, epochs, seed), address, queue, experiment,
                               timeout=timeout, extra_files=BORROWED, out=out)


def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-defenses")
    parser.add_argument("--eps", type=float, default=EPS,
                        help="L-inf budget of the attacks (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    outcome = run(args.address, args.queue, args.experiment, args.eps, args.epochs,
                  args.seed, args.timeout)
    return _driver.finish(outcome)


if __name__ == "__main__":
    _driver.main_guard(main)
